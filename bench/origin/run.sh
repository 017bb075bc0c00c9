#!/usr/bin/env bash
# The registry origin benchmark (issue 11): a "container start" served lazily from an OCI
# registry, against pulling the whole image first. Natively on the host through the kernel
# simulator (the VM under TCG is too slow to time), with a REAL docker-registry on loopback
# behind a delaying proxy (bench/origin/delay_proxy.py: RTT per connection and request,
# one shared bandwidth cap; this kernel has no netem).
#
#   bench/origin/run.sh [--smoke] [--reps N] [--build-dir DIR] [--settings 'RTT_MS MBIT' ...]
#
# Workload: what `python3 -c 'import json, ssl, sqlite3, email'` reads, recorded in a chroot
# of the image's tree (below): the files it opens (strace) and, of each, the pages it
# brought into the page cache (mincore; bench/origin/start_set.py), replayed in open order
# against the tree built into an uncompressed EROFS image (imported with 64 KiB CDC chunks).
# Modes, per network setting (1 ms / 1 Gbit/s and 20 ms / 200 Mbit/s):
#   pull  `lazyblob pull` of the whole image into an empty store, then the start set read
#         through lazyblobd from that store;
#   lazy  lazyblobd --origin with an empty store and origin cache: the start set;
#   warm  the same daemon restarted on the origin cache the lazy run filled (the kernel's
#         cache files empty): the start set again;
#   replay  (issue 16) lazy with replay of a record made on another node: a recording node
#         (empty origin cache, --trace-record 30 --no-trace-replay) runs the start, its record
#         is published with `lazyblob push`, then a fresh node (empty origin cache) fetches it
#         at OPEN and replays it while the start runs, timed like lazy; its lazyblob_prefetch_*
#         metrics are scraped after the start.
# Results: bench/results/origin.{json,md,png} (--smoke: <build>/bench-smoke/origin-smoke.*,
# one rep, fewer settings). Medians of --reps (default 3) runs; the load average is recorded.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SMOKE=0
REPS=3
BUILD=""
SETTINGS_GIVEN=()
while (($#)); do
  case $1 in
    --smoke) SMOKE=1; REPS=1; shift ;;
    --reps) REPS=$2; shift 2 ;;
    --build-dir) BUILD=$2; shift 2 ;;
    --settings) shift; SETTINGS_GIVEN=(); while (($#)) && [[ $1 != --* ]]; do SETTINGS_GIVEN+=("$1"); shift; done ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "origin bench: unknown option $1" >&2; exit 2 ;;
  esac
done
log() { echo "origin bench: $*" >&2; }
if [[ -z $BUILD ]]; then
  if [[ -f $ROOT/build-ci/CMakeCache.txt ]]; then BUILD=$ROOT/build-ci; else BUILD=$ROOT/build-bench2; fi
fi
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLAZYBLOB_BUILD_BENCH=ON >&2
fi
ninja -C "$BUILD" -j2 origin_bench lazyblobd lazyblob >&2
for tool in strace docker-registry mkfs.erofs dump.erofs chroot python3.11; do
  command -v "$tool" >/dev/null || { log "installing what the bench needs"; apt-get install -y -q \
    strace docker-registry erofs-utils python3.11 >&2; break; }
done
PY=python3
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import matplotlib' 2>/dev/null; then PY=$p; break; fi
done

# --- the tree, its start set and its image (cached) ---
# Full runs: a Debian bookworm userland from Debian packages (bench/import/corpus.sh's set:
# python3.11, perl, git, curl, systemd, binutils, ... plus python's runtime libraries),
# like an application container image. --smoke: only the host's python3.11 and its shared
# libraries (no downloads), to stay quick.
KIND=corpus
[[ $SMOKE == 1 ]] && KIND=host
[[ -n ${LAZYBLOB_ORIGIN_TREE:-} ]] && KIND=$LAZYBLOB_ORIGIN_TREE
CACHE=${LAZYBLOB_CACHE_DIR:-/var/cache/lazyblob}/bench-origin/$KIND
mkdir -p "$CACHE"
TREE=$CACHE/tree
IMAGE=$CACHE/image.erofs
PYTHON_DEPS=(zlib1g libexpat1 libffi8 libbz2-1.0 libuuid1 libncursesw6 libtinfo6 libreadline8
  libgdbm6 libdb5.3 libnsl2 libtirpc3 libcrypt1 media-types libgssapi-krb5-2)
host_tree() {
  mkdir -p "$TREE/usr/bin" "$TREE/usr/lib"
  cp -a /usr/bin/python3.11 "$TREE/usr/bin/"
  cp -a /usr/lib/python3.11 "$TREE/usr/lib/"
  for f in /usr/bin/python3.11 /usr/lib/python3.11/lib-dynload/*.so; do
    ldd "$f" | grep -o '/[^ ]*' || true
  done | sort -u | while read -r lib; do
    mkdir -p "$TREE$(dirname "$lib")"
    cp -aL "$lib" "$TREE$lib"
  done
}
corpus_tree() {
  "$ROOT/bench/import/corpus.sh" >/dev/null || return 1
  local debs=${LAZYBLOB_CACHE_DIR:-/var/cache/lazyblob}/bench-corpus/bookworm/debs d
  mkdir -p "$CACHE/debs"
  (cd "$CACHE/debs" && apt-get download -q "${PYTHON_DEPS[@]}" >&2) || return 1
  for d in "$debs"/*.deb "$CACHE"/debs/*.deb; do dpkg-deb -x "$d" "$TREE"; done
}
if [[ ! -s $IMAGE || ! -s $CACHE/ranges ]]; then
  log "building the $KIND tree in $TREE"
  rm -rf "$TREE" && mkdir -p "$TREE"
  "${KIND}_tree" || { log "could not build the $KIND tree"; exit 1; }
  log "recording the start set"
  "$PY" "$HERE/start_set.py" record --tree "$TREE" --trace "$CACHE/trace" \
    --resident "$CACHE/resident.json" -- /usr/bin/python3.11 -c 'import json, ssl, sqlite3, email' >&2
  mkfs.erofs --quiet -T0 --all-root "$IMAGE.tmp" "$TREE" >&2
  mv "$IMAGE.tmp" "$IMAGE"
  "$PY" "$HERE/start_set.py" ranges --trace "$CACHE/trace" --resident "$CACHE/resident.json" \
    --image "$IMAGE" --ranges "$CACHE/ranges" --summary "$CACHE/start-set.json"
fi

# --- a registry on loopback holding the image ---
WORK=$(mktemp -d "${LAZYBLOB_BENCH_WORK:-/var/tmp}/lazyblob-origin-bench.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
mkdir -p "$WORK/registry"
cat >"$WORK/registry.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$PORT
  secret: lazyblob-bench
YAML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 100; i++)); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done
LAZYBLOB=$BUILD/tools/lazyblob
"$LAZYBLOB" --store "$WORK/src" import "$IMAGE" --id python >&2
"$LAZYBLOB" --store "$WORK/src" push --registry "http://127.0.0.1:$PORT/bench" python >&2

# --- the runs ---
if [[ $SMOKE == 1 ]]; then
  SETTINGS=("20 200")
  OUT=$BUILD/bench-smoke; SUFFIX=-smoke
else
  SETTINGS=("1 1000" "20 200")
  OUT=$ROOT/bench/results; SUFFIX=""
fi
if ((${#SETTINGS_GIVEN[@]})); then  # a partial run: never over the committed results
  SETTINGS=("${SETTINGS_GIVEN[@]}")
  [[ $SMOKE == 1 ]] || { OUT=$BUILD/bench-partial; SUFFIX=-partial; }
fi
mkdir -p "$OUT"
export LAZYBLOB_BENCH_BUILD=$BUILD
"$PY" "$HERE/bench.py" --work "$WORK" --image "$IMAGE" --ranges "$CACHE/ranges" \
  --start-set "$CACHE/start-set.json" --tree-kind "$KIND" --upstream "http://127.0.0.1:$PORT" --repo bench \
  --reps "$REPS" --settings "${SETTINGS[@]}" --out "$OUT/origin$SUFFIX"
log "done: $OUT/origin$SUFFIX.{json,md,png}"
