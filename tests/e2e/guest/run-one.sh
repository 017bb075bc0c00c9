#!/bin/sh
# Runs one scenario function in the current (fresh) session: run.sh starts it as
# `timeout -s KILL T setsid run-one.sh NAME`, so $$ is the process group id
# that run.sh kills afterwards (hung readers, daemons, probes included).
name=$1
SC_DIR=/tmp/sc/$name
echo $$ >"$SC_DIR/pgid"
. /e2e/lib.sh
for f in /e2e/scenarios/*.sh; do . "$f"; done
scenario_setup "$name"
fn=$(echo "sc_$name" | tr '-' '_')
"$fn"
rc=$?
echo $rc >"$SC_DIR/rc"
exit $rc
