#!/usr/bin/env bash
# Measures the registry layout choice (registry/FORMAT.md "Why bundles"): bundle blobs of
# 1, 8 and 32 MiB vs one registry blob per chunk, against a real docker-registry on
# loopback, directly and behind a proxy adding RTT_MS of round trip per request.
#
#   bench/registry/layout.sh [--build-dir DIR] [--size-mib N] [--rtt-ms MS] [--mbit N]
#
# Writes bench/results/registry-layout.{jsonl,md}.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build-default
SIZE=32
RTT=5
MBIT=1000
while (($#)); do
  case $1 in
    --build-dir) BUILD=$2; shift 2 ;;
    --size-mib) SIZE=$2; shift 2 ;;
    --rtt-ms) RTT=$2; shift 2 ;;
    --mbit) MBIT=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
BIN=$BUILD/bench/registry_layout_bench
[[ -x $BIN ]] || cmake --build "$BUILD" --target registry_layout_bench
OUT=$ROOT/bench/results
mkdir -p "$OUT"
export REGISTRY_ENV_SLOW_RTT_MS=$RTT REGISTRY_ENV_SLOW_MBIT=$MBIT
# shellcheck disable=SC2016  # expanded by the inner shell
bash "$ROOT/tests/registry/registry_env.sh" bash -c '
  "$1" "$LB_REG_PLAIN" loopback "$2" && "$1" "$LB_PROXY_SLOW" "rtt-$3ms-$4mbit" "$2"
' _ "$BIN" "$SIZE" "$RTT" "$MBIT" | tee "$OUT/registry-layout.raw"
grep '^{' "$OUT/registry-layout.raw" >"$OUT/registry-layout.jsonl"
{
  echo "# Registry layout: bundles vs one blob per chunk"
  echo
  echo "$(date -u +%F), ${SIZE} MiB image (v2 = v1 + 8 changed 128 KiB runs), docker-registry 2.8 on"
  echo "loopback, filesystem storage; 'rtt' rows through a proxy adding ${RTT} ms per request"
  echo "and ${MBIT} Mbit/s. Lazy start: resolve v2, then 12 runs of 4 neighbouring chunks."
  echo
  grep '^|' "$OUT/registry-layout.raw" | awk 'NR<=2 || !/^\| (network|---)/'
} >"$OUT/registry-layout.md"
rm -f "$OUT/registry-layout.raw"
cat "$OUT/registry-layout.md"
