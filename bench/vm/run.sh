#!/usr/bin/env bash
# Real-kernel cold-read benchmark: lazyblobd against a loop mount of the same EROFS image
# held in RAM, in the same VM boot (qemu/TCG, the kernel of scripts/vm-test.sh).
#
# Workloads: `file` = cat of one big file (256 MiB of real binaries: the host's shared
# libraries, concatenated), `tree` = tar of a whole real tree (the bookworm package
# corpus of bench/import, 59 Debian packages unpacked). Both images and the lazyblob
# store they are imported into ride in the initramfs, so both sides read from RAM; the
# cache files are on the VM's ext4 disk, as in production. Cold = first read (lazyblob:
# fresh daemon and cache dir), warm = the same read after drop_caches. Reported: medians
# and per-repetition ratios lazyblob / loop (target: cold <= 1.3).
#
# usage: bench/vm/run.sh [--smoke] [--reps N] [--build-dir DIR] [--workloads file,tree]
#                        [--daemon-args "FLAGS"] [--out-dir DIR]
#   --smoke      16 MiB file, a small tree, 1 repetition (CI: proves it runs, ~1 min)
#   --reps N     repetitions (default 3)
#   --workloads  which of file,tree to run (default both)
#   --daemon-args  extra lazyblobd flags for an experiment (e.g. "--write-ahead 8M")
#   --import-args  extra `lazyblob import` flags (e.g. "--chunker fixed --avg-chunk 1M")
#   --out-dir    where the results go (default bench/results; --smoke BUILD/bench-vm-smoke)
#   --build-dir  where lazyblob/lazyblobd are built (default build-bench2, Release;
#                --smoke: build-ci when it exists)
# Writes bench/results/vm-read.{json,md,png} (--smoke: BUILD/bench-vm-smoke/).
# Environment: LAZYBLOB_CACHE_DIR (default /var/cache/lazyblob) caches images and the
# kernel. Exits non-zero when the VM run fails, never on a performance target.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SMOKE=0
REPS=""
BUILD=""
WORKLOADS="file,tree"
DAEMON_ARGS=""
IMPORT_ARGS=""
OUT=""
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --reps) REPS="$2"; shift ;;
    --build-dir) BUILD="$2"; shift ;;
    --workloads) WORKLOADS="$2"; shift ;;
    --daemon-args) DAEMON_ARGS="$2"; shift ;;
    --import-args) IMPORT_ARGS="$2"; shift ;;
    --out-dir) OUT="$2"; shift ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "bench/vm/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "bench/vm: $*" >&2; }

if [[ -z "$BUILD" ]]; then
  BUILD="$ROOT/build-bench2"
  [[ $SMOKE == 1 && -f "$ROOT/build-ci/CMakeCache.txt" ]] && BUILD="$ROOT/build-ci"
fi
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  log "configuring $BUILD (Release)"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
fi
ninja -C "$BUILD" -j2 lazyblob lazyblobd >&2
LAZYBLOB="$BUILD/tools/lazyblob"

CACHE="${LAZYBLOB_CACHE_DIR:-/var/cache/lazyblob}"
if [[ $SMOKE == 1 ]]; then
  NAME=smoke; FILE_MIB=16; REPS="${REPS:-1}"; MEM=2G
  OUT="${OUT:-$BUILD/bench-vm-smoke}"
else
  NAME=full; FILE_MIB=256; REPS="${REPS:-3}"; MEM=6G
  OUT="${OUT:-$ROOT/bench/results}"
fi
DATA="$CACHE/bench-vm/$NAME"
WORK="$BUILD/bench-vm-work"
mkdir -p "$DATA" "$OUT"

# --- images (cached) ---
# file.erofs: one file of FILE_MIB MiB cut from the host's shared libraries, in name order
# (real code and data: compresses like a container's binaries do).
if [[ ! -s "$DATA/file.erofs" ]]; then
  log "making file.erofs ($FILE_MIB MiB of /usr/lib/x86_64-linux-gnu/*.so*)"
  rm -rf "$DATA/file-tree" && mkdir -p "$DATA/file-tree"
  find /usr/lib/x86_64-linux-gnu -maxdepth 1 -type f -name '*.so*' -size +64k | LC_ALL=C sort |
    while read -r f; do cat "$f" || exit 0; done | head -c $((FILE_MIB << 20)) \
    >"$DATA/file-tree/big.bin" || true  # head closes the pipe early: SIGPIPE upstream
  [[ $(stat -c %s "$DATA/file-tree/big.bin") == $((FILE_MIB << 20)) ]] ||
    { log "not enough library bytes for $FILE_MIB MiB"; exit 1; }
  mkfs.erofs --quiet -T0 --all-root "$DATA/file.erofs.tmp" "$DATA/file-tree" >&2
  mv "$DATA/file.erofs.tmp" "$DATA/file.erofs"
  rm -rf "$DATA/file-tree"
fi
# tree.erofs: full = the import benchmark's bookworm corpus image (a real tree of 59
# Debian packages, fetched and cached by bench/import/corpus.sh); smoke = a generated tree
# (bench/make_tree.py: the same bytes on every machine, whatever the host has installed).
if [[ ! -s "$DATA/tree.erofs" ]]; then
  if [[ $SMOKE == 1 ]]; then
    log "making tree.erofs from a generated 16 MiB tree"
    rm -rf "$DATA/tree-src" && "$ROOT/bench/make_tree.py" --mib 16 "$DATA/tree-src" &&
      mkfs.erofs --quiet -T0 --all-root "$DATA/tree.erofs.tmp" "$DATA/tree-src" >&2 ||
      { log "making the smoke tree failed"; exit 1; }
    rm -rf "$DATA/tree-src"
    mv "$DATA/tree.erofs.tmp" "$DATA/tree.erofs"
  else
    log "fetching the bookworm corpus (bench/import/corpus.sh)"
    corpus=$("$ROOT/bench/import/corpus.sh" | head -1)
    [[ -s "$corpus" ]] || { log "corpus.sh gave no image"; exit 1; }
    cp "$corpus" "$DATA/tree.erofs.tmp" && mv "$DATA/tree.erofs.tmp" "$DATA/tree.erofs"
  fi
fi

# --- the bench initramfs addition: /bench/{file.erofs,tree.erofs,store/,bench.env} and
# /e2e/scenarios/90-bench.sh. The store is imported with this build's lazyblob. ---
rm -rf "$WORK" && mkdir -p "$WORK/root/bench" "$WORK/root/e2e/scenarios"
cp "$DATA/file.erofs" "$DATA/tree.erofs" "$WORK/root/bench/"
for w in file tree; do
  "$LAZYBLOB" --store "$WORK/root/bench/store" import "$DATA/$w.erofs" --id "lbbench-$w" \
    --no-progress $IMPORT_ARGS >&2  # word splitting intended: a list of flags
done
printf 'REPS=%s\nWORKLOADS="%s"\nDAEMON_ARGS="%s"\n' "$REPS" "${WORKLOADS//,/ }" "$DAEMON_ARGS" \
  >"$WORK/root/bench/bench.env"
cp "$HERE/guest-bench.sh" "$WORK/root/e2e/scenarios/90-bench.sh"
(cd "$WORK/root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) \
  >"$WORK/bench.cpio"
rm -rf "$WORK/root"
log "bench data: $(du -m "$WORK/bench.cpio" | cut -f1) MiB, $REPS repetition(s), guest RAM $MEM"

# --- the VM run (only the bench scenario) ---
rc=0
"$ROOT/scripts/vm-test.sh" --build-dir "$BUILD" --out "$WORK/vm" --only '^bench-' \
  --mem "$MEM" --extra-cpio "$WORK/bench.cpio" --timeout 5700 --verbose >&2 || rc=$?
rm -f "$WORK/bench.cpio" "$WORK/vm/initramfs+extra.cpio" "$WORK/vm/cache.img"
if ((rc != 0)); then
  log "VM run failed (exit $rc); console: $WORK/vm/console.log"
  exit 1
fi

# --- report ---
PY=python3
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import matplotlib' 2>/dev/null; then PY="$p"; break; fi
done
"$PY" "$HERE/report.py" --facts "$WORK/vm/facts.txt" --console "$WORK/vm/console.log" \
  --file-mib "$FILE_MIB" --out-dir "$OUT" --mem "$MEM" --daemon-args="$DAEMON_ARGS" \
  --import-args="$IMPORT_ARGS"
log "done: $OUT/vm-read.md"
