#!/usr/bin/env bash
# The one command for lazyblob's benchmarks: builds the bench targets, runs
#   1. read_bench run: the request engine (real ChunkStore + KernelSimulator) vs the limit
#      loop (pread + ZSTD_decompress + O_DIRECT pwrite), 1/2/4 threads, seq/rand,
#      128 KiB / 1 MiB READs, side by side in one run;
#   2. scale: READ latency, RSS and import speed as the store grows 1 -> 10 -> 50 images,
#      and RSS with a bounded decompressed-chunk cache;
#   3. bench/import/run.sh (import + dedup vs casync and borg);
#   4. bench/origin/run.sh (registry origin: a container start lazily from a registry vs
#      a full pull, behind a delaying proxy);
#   5. bench/vm/run.sh (real kernel in qemu: cold/warm read through lazyblobd vs a loop
#      mount of the image in RAM; full run only, the VM smoke is a stage of scripts/test.sh);
#   5. bench/fanotify/run.sh (this machine's kernel: cold/warm reads through the fanotify
#      front end vs file-backed mounts of the raw and the lz4hc image, and the limit loop);
#   6. scale_bench: 10,000 concurrent READs over 1,000 open objects through lazyblobd, its
#      RSS and fd count vs their bounds (bench/results/scale.md);
# then writes the report (bench/report/make_report.py).
#
# usage: bench/run.sh [--smoke]
#   (full)   results in bench/results/ (read.json, read-scale.json, REPORT.md, read-*.png)
#   --smoke  tiny version of each benchmark for CI (< 3 min), results in <build>/bench-smoke;
#            exits non-zero only when a benchmark fails to run, never on a performance target.
# Environment:
#   LAZYBLOB_CACHE_DIR        image/store cache root (default /var/cache/lazyblob)
#   LAZYBLOB_BENCH_BUILD_DIR  build dir (default: build-ci if configured with benches for
#                             --smoke, else <repo>/build-bench2, configured Release)
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SMOKE=0
case "${1:-}" in
  --smoke) SMOKE=1 ;;
  "") ;;
  -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
  *) echo "bench/run.sh: unknown argument $1" >&2; exit 2 ;;
esac

log() { echo "bench/run.sh: $*" >&2; }
# matplotlib is Debian's python3-matplotlib: prefer the system interpreter over a pyenv shim.
PY=python3
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import matplotlib' 2>/dev/null; then PY="$p"; break; fi
done
FAILED=()
step() {  # step NAME CMD...: runs, records a failure, carries on
  local name="$1"; shift
  log "== $name"
  if ! "$@"; then log "FAILED: $name"; FAILED+=("$name"); return 1; fi
}

# --- build ---
BUILD="${LAZYBLOB_BENCH_BUILD_DIR:-}"
if [[ -z "$BUILD" && $SMOKE == 1 && -f "$ROOT/build-ci/CMakeCache.txt" ]] &&
   ! grep -q '^LAZYBLOB_BUILD_BENCH:BOOL=OFF' "$ROOT/build-ci/CMakeCache.txt"; then
  BUILD="$ROOT/build-ci"
fi
BUILD="${BUILD:-$ROOT/build-bench2}"
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  log "configuring $BUILD (Release)"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLAZYBLOB_BUILD_BENCH=ON \
    >&2 || exit 1
fi
log "building read_bench and lazyblob in $BUILD"
ninja -C "$BUILD" -j2 read_bench lazyblob >&2 || { log "build failed"; exit 1; }
RB="$BUILD/bench/read_bench"
LAZYBLOB_BIN="$BUILD/tools/lazyblob"

# --- image and store (cached) ---
CACHE="${LAZYBLOB_CACHE_DIR:-/var/cache/lazyblob}/bench-read"
mkdir -p "$CACHE"
if [[ $SMOKE == 1 ]]; then
  NAME=smoke2; SOURCES=()  # a generated tree (bench/make_tree.py), the same on every machine
  OUT="$BUILD/bench-smoke"; SUFFIX="-smoke"
  RUN_ARGS=(--reps 1 --threads 1,2 --max-mib 8 --verify-image)
  SCALE_PREFIX_MIB=4; CHECKPOINTS=(1 3); SERVE_MAX_MIB=8
else
  NAME=full; SOURCES=(/usr/share/locale /usr/share/doc)
  OUT="$ROOT/bench/results"; SUFFIX=""
  RUN_ARGS=(--reps 3 --threads 1,2,4)
  SCALE_PREFIX_MIB=32; CHECKPOINTS=(1 10 50); SERVE_MAX_MIB=0
fi
IMAGE="$CACHE/$NAME.erofs"
[[ $SMOKE == 1 ]] && RUN_ARGS+=("$IMAGE")
mkdir -p "$OUT"
if [[ ! -s "$IMAGE" ]]; then
  log "making $IMAGE from ${SOURCES[*]}"
  rm -rf "$CACHE/tree-$NAME" && mkdir -p "$CACHE/tree-$NAME"
  for s in "${SOURCES[@]}"; do cp -al "$s" "$CACHE/tree-$NAME/" 2>/dev/null ||
    cp -a "$s" "$CACHE/tree-$NAME/"; done
  if ((${#SOURCES[@]} == 0)); then
    "$HERE/make_tree.py" --mib 24 "$CACHE/tree-$NAME/data" || { log "make_tree.py failed"; exit 1; }
  fi
  mkfs.erofs --quiet -T0 --all-root "$IMAGE.tmp" "$CACHE/tree-$NAME" >&2 &&
    mv "$IMAGE.tmp" "$IMAGE" || { log "mkfs.erofs failed"; exit 1; }
  rm -rf "$CACHE/tree-$NAME"
fi
STORE="$CACHE/store-$NAME"
WORK="$CACHE/work-$NAME"
rm -rf "$WORK" && mkdir -p "$WORK"
if ! "$RB" prepare --store "$STORE" --image "$IMAGE" --blob bench >&2; then
  log "store $STORE unusable; recreating"
  rm -rf "$STORE"
  step "prepare store" "$RB" prepare --store "$STORE" --image "$IMAGE" --blob bench >&2
fi

sync  # the import's pack writeback must not land inside the timed runs

# --- 1. engine vs limit ---
step "read: engine vs limit" "$RB" run --store "$STORE" --blob bench --work "$WORK" \
  --out "$OUT/read$SUFFIX.json" "${RUN_ARGS[@]}"

# --- 2. scale ---
scale() {
  local sstore="$WORK/scale-store" prev=0 parts=()
  rm -rf "$sstore"
  for n in "${CHECKPOINTS[@]}"; do
    "$RB" variants --store "$sstore" --image "$IMAGE" --work "$WORK" --from "$prev" --to "$n" \
      --prefix-mib "$SCALE_PREFIX_MIB" --out "$WORK/imports-$n.json" >&2 || return 1
    "$RB" serve --store "$sstore" --blob scale-0000 --work "$WORK" --pattern rand \
      --out "$WORK/serve-$n.json" || return 1
    parts+=("$n")
    prev=$n
  done
  for mib in 256 16; do
    "$RB" serve --store "$STORE" --blob bench --work "$WORK" --pattern seq --threads 2 \
      --chunk-cache-mib "$mib" --max-mib "$SERVE_MAX_MIB" --out "$WORK/cache-$mib.json" ||
      return 1
  done
  python3 - "$WORK" "$OUT/read-scale$SUFFIX.json" "$SCALE_PREFIX_MIB" "${parts[@]}" <<'PY'
import json, sys
work, out, prefix, ns = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
res = {"variant_mib": prefix, "mutated_fraction": 0.05, "checkpoints": [], "imports": [],
       "chunk_cache": {}}
for n in ns:
    res["imports"] += json.load(open(f"{work}/imports-{n}.json"))
    s = json.load(open(f"{work}/serve-{n}.json")); s["images"] = int(n)
    res["checkpoints"].append(s)
for mib in (256, 16):
    res["chunk_cache"][str(mib)] = json.load(open(f"{work}/cache-{mib}.json"))
json.dump(res, open(out, "w"), indent=1)
PY
}
step "read: scale" scale

# --- 3. import + dedup (owned by bench/import) ---
if [[ $SMOKE == 1 ]]; then
  # lazyblob only (casync/borg would take the smoke past its time budget); the committed
  # quick results stay as they are, this run's copy goes to $OUT.
  saved="$(mktemp -d)"
  cp "$ROOT"/bench/results/import-quick.{json,md} "$saved"/ 2>/dev/null
  step "import (quick)" env LAZYBLOB_BIN="$LAZYBLOB_BIN" "$HERE/import/run.sh" --quick \
    --tools lazyblob >&2
  cp "$ROOT"/bench/results/import-quick.{json,md} "$OUT"/ 2>/dev/null
  cp "$saved"/* "$ROOT"/bench/results/ 2>/dev/null
  rm -rf "$saved"
else
  step "import" env LAZYBLOB_BIN="$LAZYBLOB_BIN" "$HERE/import/run.sh"
fi

# --- 4. registry origin: a container start, lazy vs full pull (owned by bench/origin) ---
if [[ $SMOKE == 1 ]]; then
  step "origin (smoke)" "$HERE/origin/run.sh" --smoke --build-dir "$BUILD"
else
  step "origin" "$HERE/origin/run.sh" --build-dir "$BUILD"
fi

# --- 5. real kernel (VM), full run only ---
if [[ $SMOKE == 0 && "${SKIP_VM:-0}" != 1 ]]; then
  step "vm: cold read vs loop" "$HERE/vm/run.sh" --build-dir "$BUILD"
fi

# --- 5. the fanotify front end, natively on this kernel (owned by bench/fanotify) ---
if [[ $SMOKE == 1 ]]; then
  step "fanotify (smoke)" "$HERE/fanotify/run.sh" --smoke --build-dir "$BUILD"
else
  step "fanotify: cold/warm vs file-backed mounts" "$HERE/fanotify/run.sh" --build-dir "$BUILD"
fi

# --- 6. scale: 10,000 concurrent READs over 1,000 open objects (issue 14, item 10) ---
if ninja -C "$BUILD" -j2 scale_bench lazyblobd >&2; then
  if [[ $SMOKE == 1 ]]; then
    step "scale (smoke)" "$BUILD/bench/scale_bench" --lazyblobd "$BUILD/tools/lazyblobd" \
      --objects 20 --reads 200 --out "$OUT/scale-smoke"
  else
    step "scale: RSS and fds vs bounds" "$BUILD/bench/scale_bench" \
      --lazyblobd "$BUILD/tools/lazyblobd" --out "$ROOT/bench/results/scale"
  fi
else
  log "FAILED: building scale_bench"; FAILED+=("scale build")
fi

# --- report ---
IMPORT_JSON="$ROOT/bench/results/import.json"
[[ $SMOKE == 1 ]] && IMPORT_JSON="$OUT/import-quick.json"
step "report" "$PY" "$HERE/report/make_report.py" --read "$OUT/read$SUFFIX.json" \
  --scale "$OUT/read-scale$SUFFIX.json" --import-json "$IMPORT_JSON" --out-dir "$OUT" \
  --suffix="$SUFFIX"
rm -rf "$WORK"

if ((${#FAILED[@]})); then
  log "failed: ${FAILED[*]}"
  exit 1
fi
log "done: $OUT"
