#!/usr/bin/env bash
# Scrapes metrics_workload with a real Prometheus server and checks, through Prometheus'
# query API, that every series has exactly the value the workload produced, and that every
# lazyblob_* series docs/grafana-dashboard.json queries exists in what Prometheus ingested.
#
#   prometheus_integration.sh METRICS_WORKLOAD_BINARY GRAFANA_DASHBOARD_JSON
#
# Runs its own Prometheus (temp TSDB, loopback port; prometheus_lib.sh) and ends both
# processes on exit. Bounded: gives up after DEADLINE_S seconds in total. Prints PASS/FAIL
# lines. The same check against the real daemon: tests/tools/prometheus_daemon_integration.sh.
set -euo pipefail

WORKLOAD=${1:?usage: $0 METRICS_WORKLOAD DASHBOARD_JSON}
DASHBOARD=${2:?usage: $0 METRICS_WORKLOAD DASHBOARD_JSON}
DEADLINE_S=50
START_S=$SECONDS
# shellcheck source-path=SCRIPTDIR source=prometheus_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/prometheus_lib.sh"
tmp=$PROM_TMP
time_left() { ((SECONDS - START_S < DEADLINE_S)); }

"$WORKLOAD" "$tmp/port" "$tmp/expect" $((DEADLINE_S + 30)) >"$tmp/workload.log" 2>&1 &
workload_pid=$!
prom_track_pid "$workload_pid"
until [[ -s $tmp/port ]]; do
  time_left || prom_fail "metrics_workload did not start: $(cat "$tmp/workload.log")"
  kill -0 "$workload_pid" 2>/dev/null || prom_fail "metrics_workload exited: $(cat "$tmp/workload.log")"
  sleep 0.1
done
target_port=$(cat "$tmp/port")
echo "metrics_workload serving on 127.0.0.1:$target_port"
prom_start "127.0.0.1:$target_port"

# One Python process does the polling and the checks (interpreter start-up is slow on a
# loaded machine; a process per query would blow the time bound).
"$PYTHON" - "$PROM_API" "$tmp/expect" "$DASHBOARD" $((DEADLINE_S - (SECONDS - START_S))) <<'PY'
import os, re, sys
sys.path.insert(0, os.environ["PROM_LIB_DIR"])
from prometheus_check import Prom

api, expect_path, dashboard_path, budget_s = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
prom = Prom(api, budget_s)
prom.wait_up()
for line in open(expect_path):
    promql, want = line.rstrip("\n").split("\t")
    prom.check_value(promql, float(want))

# Every lazyblob_* name the dashboard queries must be a series Prometheus really ingested.
ingested = set(prom.get("/label/__name__/values"))
# lazyblob_origin_* exist only on a daemon with --origin: tests/tools/lazyblobd_origin_test.cc
# checks them against such a daemon's endpoint.
for name in sorted(set(re.findall(r"lazyblob_[a-zA-Z0-9_]+", open(dashboard_path).read()))):
    if name.startswith("lazyblob_origin_"):
        continue
    prom.check(name in ingested, f"dashboard metric {name} exists in Prometheus")
prom.finish()
PY
