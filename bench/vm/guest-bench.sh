#!/bin/sh
# Guest side of bench/vm/run.sh, installed as /e2e/scenarios/90-bench.sh by the bench
# initramfs only (the VM suite never sees it). /bench holds, all in RAM (the
# initramfs' tmpfs): file.erofs (one big file, big.bin), tree.erofs (a real tree),
# store/ (both imported as lbbench-file and lbbench-tree) and bench.env (REPS, WORKLOADS,
# DAEMON_ARGS: extra lazyblobd flags, empty for the defaults).
#
# For each repetition, workload (file: cat big.bin; tree: tar of the whole tree) and
# mode, in the same boot:
#   lazyblob: a fresh lazyblobd (default flags) and a fresh cache dir on the ext4 disk,
#             mount -o fsid=...; cold = first read (every byte comes through the daemon),
#             warm = the same read after drop_caches (served from the cache file).
#   probe:    the same image served raw (no store, no decompression, no verification) by
#             tests/e2e's minimal single-threaded C daemon (pread + O_DIRECT pwrite per
#             READ, no write-ahead): the floor of the on-demand path itself.
#   loop:     the same image, from RAM, on a loop device; cold = first read after
#             drop_caches, warm = the same again after drop_caches.
# The order of the modes alternates between repetitions. Every figure is a fact
# ("m.<workload>.<mode>.<phase>.<rep>=<ms>"); bench/vm/report.py turns them into ratios.

BENCH=/bench
register bench-cold-read 5400

drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
}

# read_ms WORKLOAD DIR: runs the read, prints its wall time in ms; fails on any error.
read_ms() {
  _t0=$(now_ms)
  case $1 in
  file) cat "$2/big.bin" >/dev/null 2>"$SC_DIR/read.err" || fail "cat big.bin: $(cat "$SC_DIR/read.err")" ;;
  tree)
    (cd "$2" && tar -cf - .) 2>"$SC_DIR/read.err" | cat >/dev/null
    [ -s "$SC_DIR/read.err" ] && fail "tar: $(head -c 300 "$SC_DIR/read.err")"
    ;;
  esac
  echo $(($(now_ms) - _t0))
}

# bytes_of WORKLOAD DIR: the bytes the read delivers (for the record).
bytes_of() {
  case $1 in
  file) wc -c <"$2/big.bin" ;;
  tree) (cd "$2" && tar -cf - .) 2>/dev/null | wc -c ;;
  esac
}

# cold_and_warm WORKLOAD REP MODE [AFTER_COLD]: the cold read of $MNT, AFTER_COLD (a
# command run with WORKLOAD REP, e.g. a metrics scrape), then the warm read after
# drop_caches; records both as facts.
cold_and_warm() {
  drop_caches
  _cold=$(read_ms "$1" "$MNT") || exit 1
  [ -z "$4" ] || "$4" "$1" "$2"
  drop_caches
  _warm=$(read_ms "$1" "$MNT") || exit 1
  fact "m.$1.$3.cold.$2" "$_cold"
  fact "m.$1.$3.warm.$2" "$_warm"
  log "$1 rep $2 $3: cold ${_cold} ms, warm ${_warm} ms"
}

# daemon_facts WORKLOAD REP: what the daemon did for the cold read (port $_port).
daemon_facts() {
  scrape "$_port"
  fact "reads.$1.$2" "$(metric 'lazyblob_requests_total{op="read",result="ok"}')"
  fact "read_errors.$1.$2" "$(metric 'lazyblob_requests_total{op="read",result="error"}')"
  # Worker time per stage (summed over the daemon's threads), in ms.
  for _s in lookup read decompress verify write complete; do
    fact "stage_ms.$1.$_s.$2" "$(awk -v p="lazyblob_stage_seconds_total{stage=\"$_s\"}" \
      'index($0, p) == 1 {s += $NF} END {printf "%.0f\n", s * 1000}' "$SC_DIR/metrics.txt")"
  done
}

bench_lazyblob() { # WORKLOAD REP
  CACHE=/cache/bench-$1-$2
  rm -rf "$CACHE" && mkdir -p "$CACHE"
  STORE=$BENCH/store
  _port=$((9190 + $2 % 50))
  # shellcheck disable=SC2086 # DAEMON_ARGS is a list of flags
  "$LAZYBLOBD" --store "$STORE" --cache-dir "$CACHE" --metrics-listen "127.0.0.1:$_port" \
    $DAEMON_ARGS >>"$SC_DIR/daemon.log" 2>&1 &
  DAEMON_PID=$!
  mount_retry "lbbench-$1" "$MNT"
  [ "$2" = 1 ] && fact "read_ahead_kb.lazyblob" "$(cat /sys/class/bdi/erofs-*/read_ahead_kb | head -1)"
  cold_and_warm "$1" "$2" lazyblob daemon_facts
  [ "$2" = 1 ] && fact "bytes.$1" "$(bytes_of "$1" "$MNT")"
  umount "$MNT" || fail "umount"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "lazyblobd exit status $DAEMON_RC"
  rm -rf "$CACHE"
}

bench_probe() { # WORKLOAD REP
  CACHE=/cache/bench-probe-$1-$2
  rm -rf "$CACHE" && mkdir -p "$CACHE"
  start_probe --blob "lbbench-$1=$BENCH/$1.erofs"
  mount_fsid "lbbench-$1" "$MNT" || fail "probe mount: $(cat "$SC_DIR/mount.err")"
  cold_and_warm "$1" "$2" probe
  umount "$MNT" || fail "umount probe"
  stop_probe
  rm -rf "$CACHE" "$SC_DIR/probe.log"
}

bench_loop() { # WORKLOAD REP
  _dev=$(losetup -f) || fail "no free loop device"
  losetup -r "$_dev" "$BENCH/$1.erofs" || fail "losetup $BENCH/$1.erofs"
  mount -t erofs -o ro "$_dev" "$MNT" 2>"$SC_DIR/mount.err" || fail "loop mount: $(cat "$SC_DIR/mount.err")"
  [ "$2" = 1 ] && fact "read_ahead_kb.loop" "$(cat "/sys/block/${_dev#/dev/}/queue/read_ahead_kb")"
  cold_and_warm "$1" "$2" loop
  umount "$MNT" || fail "umount loop"
  losetup -d "$_dev"
}

sc_bench_cold_read() {
  need_daemon
  [ -d "$BENCH/store" ] || skip "no bench data (run bench/vm/run.sh)"
  REPS=1
  WORKLOADS="file tree"
  DAEMON_ARGS=
  . "$BENCH/bench.env"
  fact daemon_args "$DAEMON_ARGS"
  fact reps "$REPS"
  fact mem_kb "$(awk '/MemTotal/ {print $2}' /proc/meminfo)"
  _r=1
  while [ $_r -le "$REPS" ]; do
    for _w in $WORKLOADS; do
      if [ $((_r % 2)) = 1 ]; then
        bench_lazyblob $_w $_r
        bench_probe $_w $_r
        bench_loop $_w $_r
      else
        bench_loop $_w $_r
        bench_probe $_w $_r
        bench_lazyblob $_w $_r
      fi
    done
    _r=$((_r + 1))
  done
}
