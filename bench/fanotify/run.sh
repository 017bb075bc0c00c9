#!/usr/bin/env bash
# The fanotify front end's read benchmark, natively on this machine's kernel (one command):
# cold and warm reads through lazyblobd --frontend fanotify vs EROFS file-backed mounts of
# the raw image and of an mkfs.erofs -zlz4hc image, plus the host limit loop (pread + zstd
# + pwrite) at the same thread count; medians of paired repetitions, the load alongside.
# Writes fanotify-read.{json,md,png} (bench/fanotify/report.py).
#
# usage: bench/fanotify/run.sh [--smoke] [--build-dir DIR] [--reps N] [--threads LIST]
#   full     workloads `file` (one 256 MiB file cut from the host's shared libraries, as
#            bench/vm) and `tree` (bench/import/corpus.sh's bookworm corpus image, a real tree
#            of 59 Debian packages; fsck.erofs --extract gives the tree for the lz4hc image);
#            3 reps, threads 1,4; results in bench/results/
#   --smoke  a 16 MiB file and an 8 MiB generated tree (bench/make_tree.py), 1 rep, 1
#            thread; results in BUILD/bench-smoke. Exits 0 with one line when the machine
#            cannot run it (not root, no pre-content events in the kernel or on the
#            filesystem of LAZYBLOB_CACHE_DIR); non-zero only when it fails to
#            run, never on a performance target.
# Environment: LAZYBLOB_CACHE_DIR (default /var/cache/lazyblob; must not be tmpfs).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SMOKE=0
BUILD="$ROOT/build-ci"
REPS=""
THREADS=""
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1; shift ;;
    --build-dir) BUILD=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "bench/fanotify/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "bench/fanotify: $*" >&2; }

# One line and exit 0 when this machine cannot run it.
[[ $(id -u) == 0 ]] || { log "SKIP: needs root (fanotify pre-content groups, mount(2))"; exit 0; }
command -v mkfs.erofs >/dev/null || { log "SKIP: mkfs.erofs not found (erofs-utils)"; exit 0; }
kver=$(uname -r | sed -E 's/^([0-9]+)\.([0-9]+).*/\1 \2/')
read -r kmaj kmin <<<"$kver"
if ((kmaj < 6 || (kmaj == 6 && kmin < 14))); then
  log "SKIP: kernel $(uname -r) lacks fanotify pre-content events (needs >= 6.14)"; exit 0
fi

PY=python3
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import matplotlib' 2>/dev/null; then PY="$p"; break; fi
done

if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2 || exit 1
fi
ninja -C "$BUILD" -j2 fanotify_bench lazyblob lazyblobd >&2 || { log "build failed"; exit 1; }
LB="$BUILD/tools/lazyblob"

DATA="${LAZYBLOB_CACHE_DIR:-/var/cache/lazyblob}/bench-fanotify"
if [[ $SMOKE == 1 ]]; then
  NAME=smoke; FILE_MIB=16; TREE_MIB=8; REPS=${REPS:-1}; THREADS=${THREADS:-1}
  OUT="$BUILD/bench-smoke"; SUFFIX="-smoke"
else
  NAME=full; FILE_MIB=256; REPS=${REPS:-3}; THREADS=${THREADS:-1,4}
  OUT="$ROOT/bench/results"; SUFFIX=""
fi
D="$DATA/$NAME"
mkdir -p "$D" "$OUT"
# The daemon's cache files and the store live under $DATA: its filesystem must take
# pre-content marks (ext4, xfs, btrfs; not overlayfs or tmpfs).
"$BUILD/bench/fanotify_bench" --probe "$D" 2>"$D/probe.err"
case $? in
  0) ;;
  77) log "SKIP: $(cat "$D/probe.err") (set LAZYBLOB_CACHE_DIR to a directory on ext4/xfs)"; exit 0 ;;
  *) log "probe failed: $(cat "$D/probe.err")"; exit 1 ;;
esac

# file: one big file from the host's shared libraries (real binaries), as bench/vm does.
if [[ ! -s "$D/file.raw.erofs" ]]; then
  log "making the file workload ($FILE_MIB MiB)"
  rm -rf "$D/file-tree" && mkdir -p "$D/file-tree"
  find /usr/lib/x86_64-linux-gnu -maxdepth 1 -name '*.so*' -type f | sort |
    while read -r f; do cat "$f" || exit 0; done | head -c $((FILE_MIB << 20)) \
    >"$D/file-tree/big.bin" || true
  [[ $(stat -c %s "$D/file-tree/big.bin") == $((FILE_MIB << 20)) ]] ||
    { log "not enough library bytes"; exit 1; }
  mkfs.erofs --quiet -T0 --all-root "$D/file.raw.erofs" "$D/file-tree" || exit 1
  mkfs.erofs --quiet -T0 --all-root -zlz4hc "$D/file.lz4hc.erofs" "$D/file-tree" || exit 1
  rm -rf "$D/file-tree"
fi
# tree: a real package tree (full) or a generated one (smoke).
if [[ ! -s "$D/tree.raw.erofs" ]]; then
  rm -rf "$D/tree-src" && mkdir -p "$D/tree-src"
  if [[ $SMOKE == 1 ]]; then
    "$ROOT/bench/make_tree.py" --mib "$TREE_MIB" "$D/tree-src/data" || exit 1
    mkfs.erofs --quiet -T0 --all-root "$D/tree.raw.erofs" "$D/tree-src" || exit 1
  else
    corpus=$("$ROOT/bench/import/corpus.sh" | head -1)
    [[ -s "$corpus" ]] || { log "bench/import/corpus.sh gave no image"; exit 1; }
    cp "$corpus" "$D/tree.raw.erofs"
    fsck.erofs --extract="$D/tree-src/t" "$D/tree.raw.erofs" >&2 || exit 1
  fi
  mkfs.erofs --quiet -T0 --all-root -zlz4hc "$D/tree.lz4hc.erofs" "$D/tree-src" || exit 1
  rm -rf "$D/tree-src"
fi
# One store, both raw images imported (default chunker: CDC, zstd level 3).
if [[ ! -d "$D/store" ]]; then
  for w in file tree; do
    "$LB" --store "$D/store" import "$D/$w.raw.erofs" --id "$w" --no-progress >&2 || exit 1
  done
fi
sync

args=()
for w in file tree; do args+=(--workload "$w,$D/$w.raw.erofs,$D/$w.lz4hc.erofs,$D/store,$w"); done
"$BUILD/bench/fanotify_bench" --lazyblob "$LB" --lazyblobd "$BUILD/tools/lazyblobd" \
  --work "$D/work" --out "$OUT/fanotify-read$SUFFIX.json" --reps "$REPS" --threads "$THREADS" \
  "${args[@]}" || { log "fanotify_bench failed"; exit 1; }
rm -rf "$D/work"
"$PY" "$HERE/report.py" --json "$OUT/fanotify-read$SUFFIX.json" --out-dir "$OUT" \
  --suffix="$SUFFIX" --kernel "$(uname -r)" || exit 1
log "done: $OUT/fanotify-read$SUFFIX.md"
