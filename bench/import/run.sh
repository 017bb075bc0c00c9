#!/usr/bin/env bash
# Import + dedup benchmark: lazyblob vs casync vs borg on the same two EROFS images
# (the same Debian package set from bookworm and trixie, see corpus.sh).
#
# usage: bench/import/run.sh [--quick] [--reps N] [--tools lazyblob,casync,borg]
#   --quick   small package subset, one repetition (CI smoke, < 2 minutes)
#   --reps N  repetitions per tool, each into fresh stores (default 3; medians reported)
#   --tools   comma-separated subset of tools to run
# Environment:
#   LAZYBLOB_BIN        the lazyblob binary (default: built in LAZYBLOB_BUILD_DIR)
#   LAZYBLOB_BUILD_DIR  build dir to build the lazyblob target in (default <repo>/build-bench,
#                       configured Release if it has no CMakeCache.txt)
#   LAZYBLOB_CACHE_DIR  corpus cache root (default /var/cache/lazyblob)
#   LAZYBLOB_BENCH_WORK where the stores are made (default <cache>/bench-corpus/work)
# Writes bench/results/import.json and import.md (import-quick.* with --quick), prints the
# table. Exits non-zero if any tool failed (its failure is recorded in the results).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
QUICK=0
REPS=""
TOOLS="lazyblob,casync,borg"
while (($#)); do
  case "$1" in
    --quick) QUICK=1 ;;
    --reps) REPS="$2"; shift ;;
    --tools) TOOLS="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ -z "$REPS" ]] && { [[ $QUICK == 1 ]] && REPS=1 || REPS=3; }
CACHE="${LAZYBLOB_CACHE_DIR:-/var/cache/lazyblob}/bench-corpus"
WORK="${LAZYBLOB_BENCH_WORK:-$CACHE/work}"
SUFFIX=""
[[ $QUICK == 1 ]] && SUFFIX="-quick"
OUT_JSON="$ROOT/bench/results/import$SUFFIX.json"
OUT_MD="$ROOT/bench/results/import$SUFFIX.md"

log() { echo "bench/import: $*" >&2; }

# The corpus (downloaded and built once, then cached).
QFLAG=()
[[ $QUICK == 1 ]] && QFLAG=(--quick)
mapfile -t IMAGES < <("$HERE/corpus.sh" "${QFLAG[@]}")
NAMES=(bookworm trixie)
((${#IMAGES[@]} == 2)) || { log "corpus.sh did not give two images"; exit 1; }

# The lazyblob binary.
LAZYBLOB_ERROR=""
if [[ ",$TOOLS," == *,lazyblob,* ]]; then
  if [[ -z "${LAZYBLOB_BIN:-}" ]]; then
    BUILD="${LAZYBLOB_BUILD_DIR:-$ROOT/build-bench}"
    if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
      log "configuring $BUILD (Release)"
      cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DLAZYBLOB_BUILD_BENCH=OFF >&2 || LAZYBLOB_ERROR="cmake configure failed"
    fi
    if [[ -z "$LAZYBLOB_ERROR" ]]; then
      log "building lazyblob in $BUILD"
      cmake --build "$BUILD" --target lazyblob -- -j2 >&2 ||
        LAZYBLOB_ERROR="cmake --build --target lazyblob failed"
    fi
    LAZYBLOB_BIN="$BUILD/tools/lazyblob"
  fi
  if [[ -z "$LAZYBLOB_ERROR" && ! -x "$LAZYBLOB_BIN" ]]; then
    LAZYBLOB_ERROR="no lazyblob binary at $LAZYBLOB_BIN"
  fi
  [[ -n "$LAZYBLOB_ERROR" ]] && log "lazyblob skipped: $LAZYBLOB_ERROR"
fi

# shellcheck source=tools.sh
source "$HERE/tools.sh"

mkdir -p "$WORK"
RECORDS="$WORK/records.jsonl"
: >"$RECORDS"
FAILED=0
IFS=, read -r -a TOOL_LIST <<<"$TOOLS"
if [[ -n "$LAZYBLOB_ERROR" ]]; then
  echo "{\"tool\": \"lazyblob\", \"error\": \"$LAZYBLOB_ERROR\"}" >>"$RECORDS"
  FAILED=1
fi

# Repetitions interleave the tools (rep 1: a b c, rep 2: a b c, ...) so slow phases of
# the shared machine spread over all of them. Images are read once first to be in the page
# cache for every tool alike.
cat "${IMAGES[@]}" >/dev/null
for ((rep = 1; rep <= REPS; rep++)); do
  for tool in "${TOOL_LIST[@]}"; do
    [[ $tool == lazyblob && -n "$LAZYBLOB_ERROR" ]] && continue
    dir="$WORK/$tool-$rep"
    rm -rf "$dir" && mkdir -p "$dir"
    cat "${IMAGES[@]}" >/dev/null
    log "rep $rep/$REPS: $tool"
    if rec=$("run_$tool" "$dir" 2>"$dir.stderr"); then
      echo "$rec" | python3 -c 'import json,sys; r=json.load(sys.stdin); r["rep"]=int(sys.argv[1]); print(json.dumps(r))' "$rep" >>"$RECORDS"
      log "  $(echo "$rec" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.2f s, %.1f MB/s, %d stored bytes (du)" % (r["seconds"], r["logical_bytes"]/r["seconds"]/1e6, r["store_du_bytes"]))')"
    else
      err=$(tail -3 "$dir.stderr" | tr '"\n' "' ")
      log "  $tool failed: $err"
      echo "{\"tool\": \"$tool\", \"rep\": $rep, \"error\": \"$err\"}" >>"$RECORDS"
      FAILED=1
    fi
    rm -rf "$dir"
  done
done

mkdir -p "$ROOT/bench/results"
python3 "$HERE/report.py" --records "$RECORDS" --json "$OUT_JSON" --md "$OUT_MD" \
  --images "${IMAGES[@]}" --names "${NAMES[@]}" --reps "$REPS" \
  --corpus-dir "$CACHE" --quick "$QUICK" --packages "$HERE/packages.txt"
cat "$OUT_MD"
exit $FAILED
