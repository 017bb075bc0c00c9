#!/bin/sh
# Scenario driver: sources every /e2e/scenarios/*.sh (each registers its
# scenarios with `register NAME TIMEOUT_S`), then runs them one by one, each in
# its own session under a hard timeout, and prints one
# "@@E2E PASS|FAIL|SKIP name[: reason]" line per scenario, then "@@E2E DONE".
# The kernel command line option e2e.only=REGEX selects scenarios.
. /e2e/lib.sh
for f in /e2e/scenarios/*.sh; do . "$f"; done

only=$(sed -n 's/.*e2e\.only=\([^ ]*\).*/\1/p' /proc/cmdline)
mkdir -p /cache/e2e-logs
for entry in $SCENARIOS; do
  name=${entry%%:*}
  tmo=${entry#*:}
  if [ -n "$only" ] && ! echo "$name" | grep -Eq "$only"; then continue; fi
  run_scenario "$name" "$tmo"
done
dmesg > /cache/e2e-logs/dmesg.txt 2>&1
echo "@@E2E DONE"
