# shellcheck shell=bash
# Shared helpers for the integration tests that scrape a lazyblob /metrics endpoint with a
# real Prometheus server (tests/metrics/prometheus_integration.sh,
# tests/tools/prometheus_daemon_integration.sh). Source it from a `set -euo pipefail` script:
#
#   source prometheus_lib.sh      # sets PROMETHEUS, PYTHON, PROM_TMP, PROM_LIB_DIR; traps EXIT
#   prom_track_pid PID            # ended (SIGTERM, then waited for) on exit
#   port=$(prom_free_port)
#   prom_start 127.0.0.1:PORT     # starts Prometheus scraping it every 1 s; sets PROM_API
#   prom_fail "why"               # FAIL line + the Prometheus log tail, exit 1
#
# The Python side (polling, queries, PASS/FAIL counting) is prometheus_check.py, next to
# this file: `sys.path.insert(0, os.environ["PROM_LIB_DIR"])`.

PROM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PROM_LIB_DIR
PROMETHEUS=${PROMETHEUS:-$(command -v prometheus || echo /usr/bin/prometheus)}
# Debian's interpreter directly: version-manager shims can take seconds to start.
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=$(command -v python3); fi
fi
PROM_TMP=$(mktemp -d /tmp/lazyblob-prom.XXXXXX)
PROM_PIDS=()

prom_cleanup() {
  local pid
  for pid in "${PROM_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PROM_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$PROM_TMP"
}
trap prom_cleanup EXIT

prom_track_pid() { PROM_PIDS+=("$1"); }

prom_fail() {
  echo "FAIL: $*"
  if [[ -f $PROM_TMP/prometheus.log ]]; then
    tail -n 20 "$PROM_TMP/prometheus.log" | sed 's/^/  prometheus: /'
  fi
  exit 1
}

prom_free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# prom_start HOST:PORT — Prometheus on a free loopback port with a temp TSDB, scraping the
# target every second. Sets PROM_API (http://127.0.0.1:N/api/v1).
prom_start() {
  local target=$1 prom_port
  [[ -x $PROMETHEUS ]] || prom_fail "prometheus binary not found (scripts/install-deps.sh installs it)"
  prom_port=$(prom_free_port)
  cat >"$PROM_TMP/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: lazyblob
    static_configs:
      - targets: ["$target"]
YAML
  "$PROMETHEUS" --config.file="$PROM_TMP/prometheus.yml" --storage.tsdb.path="$PROM_TMP/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$PROM_TMP/prometheus.log" 2>&1 &
  prom_track_pid $!
  # shellcheck disable=SC2034  # read by the sourcing script
  PROM_API="http://127.0.0.1:$prom_port/api/v1"
}
