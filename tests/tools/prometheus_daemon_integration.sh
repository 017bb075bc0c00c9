#!/usr/bin/env bash
# Issue 6's integration test against the REAL daemon: daemon_workload runs lazyblobd on the
# kernel simulator with a real store and a known workload (mounts, full and partial reads,
# an unknown blob, a corrupt chunk); a real Prometheus server scrapes the daemon's /metrics;
# every expected series is then read back through Prometheus' query API and compared with
# what the simulator and the cache files say happened. Finally the daemon must exit 0 on
# SIGTERM.
#
#   prometheus_daemon_integration.sh DAEMON_WORKLOAD LAZYBLOBD GRAFANA_DASHBOARD_JSON
#
# Prometheus start/query helpers: tests/metrics/prometheus_lib.sh, prometheus_check.py.
# Bounded: gives up after DEADLINE_S seconds. Prints PASS/FAIL lines and "N passed, N failed".
set -euo pipefail

WORKLOAD=${1:?usage: $0 DAEMON_WORKLOAD LAZYBLOBD DASHBOARD_JSON}
LAZYBLOBD=${2:?usage: $0 DAEMON_WORKLOAD LAZYBLOBD DASHBOARD_JSON}
DASHBOARD=${3:?usage: $0 DAEMON_WORKLOAD LAZYBLOBD DASHBOARD_JSON}
DEADLINE_S=100
START_S=$SECONDS
# shellcheck source-path=SCRIPTDIR source=../metrics/prometheus_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../metrics/prometheus_lib.sh"
tmp=$PROM_TMP
time_left() { ((SECONDS - START_S < DEADLINE_S)); }
workload_log() { sed 's/^/  daemon_workload: /' "$tmp/workload.log"; }

daemon_port=$(prom_free_port)
"$WORKLOAD" "$daemon_port" "$tmp/expect.json" $((DEADLINE_S + 10)) "$LAZYBLOBD" \
  >"$tmp/workload.log" 2>&1 &
workload_pid=$!
prom_track_pid "$workload_pid"
prom_start "127.0.0.1:$daemon_port"
echo "lazyblobd metrics on 127.0.0.1:$daemon_port, Prometheus at $PROM_API"

until [[ -s $tmp/expect.json ]]; do
  if ! kill -0 "$workload_pid" 2>/dev/null; then
    workload_log
    prom_fail "daemon_workload exited before the workload was done"
  fi
  time_left || { workload_log; prom_fail "workload not done in ${DEADLINE_S}s"; }
  sleep 0.2
done
echo "workload done: $("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["simulator"])' "$tmp/expect.json")"

# The live exposition must be valid for Prometheus' own linter (issue 15): no NaN
# summaries from prometheus-cpp's exposer, HELP/TYPE for every family, counters named
# *_total. promtool comes with Debian's prometheus package.
promtool_checks=0
if command -v promtool >/dev/null; then
  curl -sf "http://127.0.0.1:$daemon_port/metrics" >"$tmp/live.prom" || true
  if [[ -s $tmp/live.prom ]] && promtool check metrics <"$tmp/live.prom" >"$tmp/promtool.out" 2>&1; then
    echo "PASS: promtool check metrics accepts the daemon's live /metrics"
    promtool_checks=1
  else
    echo "FAIL: promtool check metrics on the daemon's live /metrics:"
    sed 's/^/  /' "$tmp/promtool.out" 2>/dev/null
    promtool_checks=-1
  fi
else
  echo "FAIL: promtool not installed (scripts/install-deps.sh installs prometheus)"
  promtool_checks=-1
fi

# One Python process does the polling and the checks (interpreter start-up is slow on a
# loaded machine). It writes "passed failed" to $tmp/counts.
set +e
"$PYTHON" - "$PROM_API" "$tmp/expect.json" "$DASHBOARD" "$tmp/counts" \
  $((DEADLINE_S - (SECONDS - START_S))) <<'PY'
import json, os, re, sys, time
sys.path.insert(0, os.environ["PROM_LIB_DIR"])
from prometheus_check import Prom

api, expect_path, dashboard_path, counts_path = sys.argv[1:5]
prom = Prom(api, float(sys.argv[5]))
expect = json.load(open(expect_path))
prom.wait_up()

# Only a scrape that started after the workload finished sees all of it.
ts = []
while prom.time_left():
    ts = prom.values("timestamp(lazyblob_build_info)")
    if ts and ts[0] > expect["done_unix_s"]:
        break
    time.sleep(0.5)
prom.check(bool(ts) and ts[0] > expect["done_unix_s"], "a scrape after the workload finished")

for c in expect["checks"]:
    prom.check_value(c["query"], c["value"], c["why"])

# Every lazyblob_* name the dashboard queries should be a series the daemon exports.
# KNOWN_MISSING: gaps in the daemon, reported as XFAIL; an XPASS fails so the list shrinks.
KNOWN_MISSING = set()
# Series that exist only while a blob is open; daemon_workload checks them on the daemon's
# endpoint before unmounting (a 1 s scrape would race the workload).
WHILE_OPEN = {"lazyblob_open_blob"}
ingested = set(prom.get("/label/__name__/values"))
for name in sorted(set(re.findall(r"lazyblob_[a-zA-Z0-9_]+", open(dashboard_path).read()))):
    if name.startswith("lazyblob_origin_"):
        continue  # only with --origin: lazyblobd_origin_test checks them on such a daemon
    if name in WHILE_OPEN and name not in ingested:
        prom.check(True, f"dashboard metric {name} was exported while blobs were open "
                   "(daemon_workload checked it before unmounting)")
    elif name in KNOWN_MISSING and name not in ingested:
        print(f"XFAIL: dashboard metric {name} is not exported by lazyblobd (known gap)")
    elif name in KNOWN_MISSING:
        prom.check(False, f"XPASS: {name} is exported now: drop it from KNOWN_MISSING")
    else:
        prom.check(name in ingested, f"dashboard metric {name} exists in Prometheus")
open(counts_path, "w").write(f"{prom.passed} {prom.failed}\n")
PY
py_rc=$?
set -e
read -r passed failed <"$tmp/counts" 2>/dev/null || { passed=0; failed=1; }
((py_rc == 0)) || failed=$((failed + (failed == 0)))
if ((promtool_checks > 0)); then passed=$((passed + 1)); else failed=$((failed + 1)); fi

# The daemon drains and exits 0 on SIGTERM (daemon_workload sends it and checks).
touch "$tmp/expect.json.stop"
if wait "$workload_pid"; then
  echo "PASS: lazyblobd exited 0 on SIGTERM"
  passed=$((passed + 1))
else
  echo "FAIL: daemon_workload failed after the checks:"
  workload_log
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
((failed == 0))
