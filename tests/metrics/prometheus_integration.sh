#!/usr/bin/env bash
# Scrapes metrics_workload with a real Prometheus server and checks, through Prometheus'
# query API, that every series has exactly the value the workload produced, and that every
# lazyblob_* series docs/grafana-dashboard.json queries exists in what Prometheus ingested.
#
#   prometheus_integration.sh METRICS_WORKLOAD_BINARY GRAFANA_DASHBOARD_JSON
#
# Runs its own Prometheus (temp TSDB, loopback port) and ends both processes on exit.
# Bounded: gives up after DEADLINE_S seconds in total. Prints PASS/FAIL lines.
set -euo pipefail

WORKLOAD=${1:?usage: $0 METRICS_WORKLOAD DASHBOARD_JSON}
DASHBOARD=${2:?usage: $0 METRICS_WORKLOAD DASHBOARD_JSON}
PROMETHEUS=${PROMETHEUS:-$(command -v prometheus || echo /usr/bin/prometheus)}
# Debian's interpreter directly: version-manager shims can take seconds to start.
PYTHON=${PYTHON:-$( [[ -x /usr/bin/python3 ]] && echo /usr/bin/python3 || command -v python3)}
DEADLINE_S=50
START_S=$SECONDS

tmp=$(mktemp -d /tmp/lazyblob-prom.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  if [[ -f $tmp/prometheus.log ]]; then tail -n 20 "$tmp/prometheus.log" | sed 's/^/  prometheus: /'; fi
  exit 1
}
time_left() { ((SECONDS - START_S < DEADLINE_S)); }

[[ -x $PROMETHEUS ]] || fail "prometheus binary not found (scripts/install-deps.sh installs it)"

"$WORKLOAD" "$tmp/port" "$tmp/expect" $((DEADLINE_S + 30)) >"$tmp/workload.log" 2>&1 &
pids+=($!)
until [[ -s $tmp/port ]]; do
  time_left || fail "metrics_workload did not start: $(cat "$tmp/workload.log")"
  kill -0 "${pids[0]}" 2>/dev/null || fail "metrics_workload exited: $(cat "$tmp/workload.log")"
  sleep 0.1
done
target_port=$(cat "$tmp/port")
echo "metrics_workload serving on 127.0.0.1:$target_port"

prom_port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: lazyblob
    static_configs:
      - targets: ["127.0.0.1:$target_port"]
YAML
"$PROMETHEUS" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
pids+=($!)
api="http://127.0.0.1:$prom_port/api/v1"

# One Python process does the polling and the checks (interpreter start-up is slow on a
# loaded machine; a process per query would blow the time bound).
"$PYTHON" - "$api" "$tmp/expect" "$DASHBOARD" $((DEADLINE_S - (SECONDS - START_S))) <<'PY'
import json, re, sys, time, urllib.parse, urllib.request

api, expect_path, dashboard_path, budget_s = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
deadline = time.monotonic() + budget_s

def get(path, **params):
    url = api + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)["data"]

health = "none"
while time.monotonic() < deadline:
    try:
        health = ",".join(t["health"] for t in get("/targets")["activeTargets"])
    except Exception:
        pass
    if health == "up":
        break
    time.sleep(0.5)
if health != "up":
    print(f"FAIL: Prometheus never scraped the target (health: {health})")
    sys.exit(1)
print("PASS: Prometheus scraped the target (health up)")

passed = failed = 0
def check(ok, line):
    global passed, failed
    print(("PASS: " if ok else "FAIL: ") + line)
    passed, failed = passed + ok, failed + (not ok)

for line in open(expect_path):
    promql, want = line.rstrip("\n").split("\t")
    want = float(want)
    got = []
    # A scrape's samples are queryable once appended; retry briefly if the first query races it.
    while time.monotonic() < deadline:
        got = [float(r["value"][1]) for r in get("/query", query=promql)["result"]]
        if got:
            break
        time.sleep(0.5)
    ok = len(got) == 1 and abs(got[0] - want) <= 1e-9 * max(1.0, abs(want))
    check(ok, f"{promql} = {got[0] if len(got) == 1 else got}" + ("" if ok else f", want {want}"))

# Every lazyblob_* name the dashboard queries must be a series Prometheus really ingested.
ingested = set(get("/label/__name__/values"))
for name in sorted(set(re.findall(r"lazyblob_[a-zA-Z0-9_]+", open(dashboard_path).read()))):
    check(name in ingested, f"dashboard metric {name} exists in Prometheus")

print(f"{passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
PY
