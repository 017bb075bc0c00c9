#!/bin/sh
# Real-daemon scenarios: import an EROFS image into a store with
# `lazyblob --store DIR import IMG --id ID`, serve it with
# `lazyblobd --store DIR --cache-dir DIR`, mount it with fsid=ID, compare.
# Each prints SKIP while build/tools/lazyblob{,d} do not exist.

need_daemon() {
  [ -x "$LAZYBLOB" ] || skip "lazyblob not built"
  [ -x "$LAZYBLOBD" ] || skip "lazyblobd not built"
  STORE=$CACHE.store
  rm -rf "$STORE"
}

# import IMG ID [IMPORT_ARGS...] (e.g. --chunker fixed --avg-chunk 4K)
import() {
  _img=$1
  _id=$2
  shift 2
  "$LAZYBLOB" --store "$STORE" import "$_img" --id "$_id" "$@" >>"$SC_DIR/import.out" 2>&1 ||
    fail "import $_img as $_id: $(tail -3 "$SC_DIR/import.out" | tr '\n' ' ')"
}

# worker_pid: pid of the newest worker the supervisor logged ("worker pid N started").
worker_pid() { sed -n 's/.*worker pid \([0-9]*\) started.*/\1/p' "$SC_DIR/daemon.log" | tail -1; }

# scrape PORT: GET /metrics into $SC_DIR/metrics.txt (retries ~5 s while it binds). The
# daemon labels every series with its front end (frontend="cachefiles" here); the label is
# dropped so that the fixed-string prefixes below name a series exactly.
scrape() {
  _i=0
  until wget -q -O "$SC_DIR/metrics.raw" "http://127.0.0.1:$1/metrics" 2>/dev/null; do
    _i=$((_i + 1))
    [ $_i -ge 25 ] && fail "GET http://127.0.0.1:$1/metrics failed"
    usleep 200000
  done
  grep -q 'frontend="cachefiles"' "$SC_DIR/metrics.raw" || fail "series lack frontend=\"cachefiles\""
  sed -E 's/,frontend="[a-z_]+"\}/}/; s/\{frontend="[a-z_]+"\}//; s/\{frontend="[a-z_]+",/{/' \
    "$SC_DIR/metrics.raw" >"$SC_DIR/metrics.txt"
}

# metric PREFIX: sum of the samples of the last scrape whose line starts with
# PREFIX (a fixed string, e.g. 'lazyblob_requests_total{op="read"'), as an integer.
metric() { awk -v p="$1" 'index($0, p) == 1 {s += $NF} END {printf "%.0f\n", s}' "$SC_DIR/metrics.txt"; }

# set_readahead KB: read_ahead_kb of every mounted erofs bdi (before opening files).
set_readahead() {
  for _b in /sys/class/bdi/erofs-*; do echo "$1" >"$_b/read_ahead_kb"; done
}

# wait_done FILE TIMEOUT_S WHAT: fails if FILE does not appear in time (a hung reader).
wait_done() { wait_for_file "$1" "$2" || fail "$3 did not return within $2 s"; }

# start_daemon [EXTRA_ARGS]: sets DAEMON_PID; readiness is checked by mounting.
start_daemon() {
  "$LAZYBLOBD" --store "$STORE" --cache-dir "$CACHE" --log-level debug "$@" \
    >>"$SC_DIR/daemon.log" 2>&1 &
  DAEMON_PID=$!
}

# mount_retry FSID DIR [OPTS]: the daemon binds asynchronously; retry ~10 s.
mount_retry() {
  _i=0
  until mount_fsid "$1" "$2" "$3"; do
    kill -0 "$DAEMON_PID" 2>/dev/null || fail "daemon exited: $(tail -3 "$SC_DIR/daemon.log" | tr '\n' ' ')"
    _i=$((_i + 1))
    [ $_i -ge 50 ] && fail "mount $1: $(cat "$SC_DIR/mount.err")"
    usleep 200000
  done
}

stop_daemon() {
  kill -TERM "$DAEMON_PID" 2>/dev/null
  _i=0
  while kill -0 "$DAEMON_PID" 2>/dev/null && [ $_i -lt 100 ]; do usleep 100000; _i=$((_i + 1)); done
  kill -0 "$DAEMON_PID" 2>/dev/null && fail "daemon ignored SIGTERM for 10 s"
  wait "$DAEMON_PID"
  DAEMON_RC=$?
}

# serve_and_check IMAGE_NAME: the common import/serve/mount/compare cycle.
serve_and_check() {
  need_daemon
  import "$IMAGES/$1.erofs" "$FSID"
  start_daemon
  mount_retry "$FSID" "$MNT"
  r=$(check_tree "$MNT" "$IMAGES/$1.manifest") || fail "content: $r"
  umount "$MNT" || fail "umount"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC after SIGTERM"
}

register daemon-mount 120
sc_daemon_mount() { serve_and_check tree; }

register daemon-tail 120
sc_daemon_tail() { serve_and_check tail; }

register daemon-big 180
sc_daemon_big() { serve_and_check big; }

register daemon-remount-cached 120
sc_daemon_remount_cached() {
  need_daemon
  import "$IMAGES/tree.erofs" "$FSID"
  start_daemon
  mount_retry "$FSID" "$MNT"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content: $r"
  umount "$MNT"
  mount_retry "$FSID" "$MNT"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content after remount: $r"
  umount "$MNT"
  stop_daemon
}

# Warm restart (same cache dir): the remount reads correctly and sends no READ;
# cold restart (fresh cache dir): READs again, content right.
register daemon-restart-cache-reuse 180
sc_daemon_restart_cache_reuse() {
  need_daemon
  import "$IMAGES/tree.erofs" "$FSID"
  start_daemon
  mount_retry "$FSID" "$MNT"
  check_tree "$MNT" "$IMAGES/tree.manifest" >/dev/null || fail "content"
  umount "$MNT"
  stop_daemon
  start_daemon --metrics-listen 127.0.0.1:9161
  mount_retry "$FSID" "$MNT"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content after a warm restart: $r"
  scrape 9161
  warm=$(metric 'lazyblob_requests_total{op="read"')
  fact warm_restart_reads "$warm"
  [ "$warm" = 0 ] || fail "warm restart: $warm READs for a fully cached blob"
  umount "$MNT"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC"
  CACHE=$CACHE.cold
  rm -rf "$CACHE" && mkdir -p "$CACHE"
  start_daemon --metrics-listen 127.0.0.1:9162
  mount_retry "$FSID" "$MNT"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content after a cold restart: $r"
  scrape 9162
  cold=$(metric 'lazyblob_requests_total{op="read"')
  fact cold_restart_reads "$cold"
  [ "$cold" -gt 0 ] || fail "cold restart sent no READ"
  umount "$MNT"
  stop_daemon
}

register daemon-two-images 180
sc_daemon_two_images() {
  need_daemon
  import "$IMAGES/tree.erofs" "${FSID}_a"
  import "$IMAGES/big.erofs" "${FSID}_b"
  start_daemon
  mkdir -p "$MNT/a" "$MNT/b"
  mount_retry "${FSID}_a" "$MNT/a"
  mount_retry "${FSID}_b" "$MNT/b"
  r=$(check_tree "$MNT/a" "$IMAGES/tree.manifest") || fail "content a: $r"
  r=$(check_tree "$MNT/b" "$IMAGES/big.manifest") || fail "content b: $r"
  umount "$MNT/a"
  umount "$MNT/b"
  stop_daemon
}

# Two images sharing most content (tree2 = tree with one file rewritten, one
# added), mounted at once: both read right, the store holds the shared chunks once.
register daemon-shared-images 180
sc_daemon_shared_images() {
  need_daemon
  . "$IMAGES/tree.env"
  import "$IMAGES/tree.erofs" "${FSID}_a"
  import "$IMAGES/tree2.erofs" "${FSID}_b"
  "$LAZYBLOB" --store "$STORE" stat --json >"$SC_DIR/stat.json" 2>>"$SC_DIR/import.out" || fail "stat --json"
  logical=$(sed -n 's/.*"logical_bytes": *\([0-9]*\).*/\1/p' "$SC_DIR/stat.json")
  unique=$(sed -n 's/.*"unique_bytes": *\([0-9]*\).*/\1/p' "$SC_DIR/stat.json")
  [ -n "$logical" ] && [ -n "$unique" ] || fail "stat --json: no logical/unique_bytes: $(tr '\n' ' ' <"$SC_DIR/stat.json")"
  shared=$((logical - unique))
  fact store "logical=$logical unique=$unique shared=$shared tree_size=$TREE_SIZE"
  # About 1 MB of the 1.4 MB tree is shared (the rewritten 300000 bytes and the
  # chunks around them are not); a store without dedup would share 0.
  [ "$shared" -ge $((TREE_SIZE / 2)) ] || fail "store shares only $shared bytes (tree is $TREE_SIZE)"
  start_daemon
  mkdir -p "$MNT/a" "$MNT/b"
  mount_retry "${FSID}_a" "$MNT/a"
  mount_retry "${FSID}_b" "$MNT/b"
  r=$(check_tree "$MNT/a" "$IMAGES/tree.manifest") || fail "content a: $r"
  r=$(check_tree "$MNT/b" "$IMAGES/tree2.manifest") || fail "content b: $r"
  umount "$MNT/a"
  umount "$MNT/b"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC"
}

register daemon-dedup-same-image 180
sc_daemon_dedup_same_image() {
  need_daemon
  import "$IMAGES/tree.erofs" "${FSID}_a"
  du_a=$(du -sk "$STORE" | cut -f1)
  import "$IMAGES/tree.erofs" "${FSID}_b"
  du_b=$(du -sk "$STORE" | cut -f1)
  fact store_kb "first=$du_a second=$du_b"
  start_daemon
  mkdir -p "$MNT/a" "$MNT/b"
  mount_retry "${FSID}_a" "$MNT/a"
  mount_retry "${FSID}_b" "$MNT/b"
  r=$(check_tree "$MNT/a" "$IMAGES/tree.manifest") || fail "content a: $r"
  r=$(check_tree "$MNT/b" "$IMAGES/tree.manifest") || fail "content b: $r"
  umount "$MNT/a"
  umount "$MNT/b"
  stop_daemon
}

register daemon-unknown-id 120
sc_daemon_unknown_id() {
  need_daemon
  import "$IMAGES/tree.erofs" "$FSID"
  start_daemon
  mount_retry "$FSID" "$MNT"
  mkdir -p "$MNT.x"
  if mount_fsid "${FSID}_missing" "$MNT.x"; then
    umount "$MNT.x"
    fail "mount of an id that was never imported succeeded"
  fi
  fact mount_error "$(tr '\n' ' ' <"$SC_DIR/mount.err")"
  kill -0 "$DAEMON_PID" 2>/dev/null || fail "daemon died on an unknown id"
  grep -q "OPEN of blob '${FSID}_missing'.*refused" "$SC_DIR/daemon.log" ||
    fail "no 'OPEN ... refused' line for the unknown id in the daemon log"
  fact daemon_log "$(grep "'${FSID}_missing'" "$SC_DIR/daemon.log" | head -1 | cut -c1-200)"
  # The mount made before still reads (cold: nothing was read yet).
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content of the other mount: $r"
  umount "$MNT"
  # And a new mount still works.
  mount_retry "$FSID" "$MNT"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content after unknown id: $r"
  umount "$MNT"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC"
}

register daemon-parallel-readers 180
sc_daemon_parallel_readers() {
  need_daemon
  import "$IMAGES/big.erofs" "$FSID"
  start_daemon
  mount_retry "$FSID" "$MNT"
  pids=
  for i in 1 2 3 4; do
    sha256sum "$MNT/big.bin" >"$SC_DIR/par.$i" 2>&1 &
    pids="$pids $!"
  done
  for j in $pids; do wait "$j"; done
  want=$(cut -d' ' -f1 "$IMAGES/big.manifest")
  for i in 1 2 3 4; do
    [ "$(cut -d' ' -f1 "$SC_DIR/par.$i")" = "$want" ] || fail "reader $i: $(cat "$SC_DIR/par.$i")"
  done
  umount "$MNT"
  stop_daemon
}

# The metrics endpoint answers inside the VM and counts what the scenario did:
# one mount (OPEN ok = 1), a cold read of every file (written bytes >= the file
# bytes; write-ahead off so every byte comes from a READ), no error.
register daemon-metrics 120
sc_daemon_metrics() {
  need_daemon
  import "$IMAGES/tree.erofs" "$FSID"
  start_daemon --metrics-listen 127.0.0.1:9150 --write-ahead 0
  mount_retry "$FSID" "$MNT"
  check_tree "$MNT" "$IMAGES/tree.manifest" >/dev/null || fail "content"
  n=$(find "$MNT" -type f -exec stat -c %s {} + | awk '{s += $1} END {print s + 0}')
  scrape 9150
  grep -q '^lazyblob_' "$SC_DIR/metrics.txt" || fail "no lazyblob metric in /metrics"
  fact metric_lines "$(grep -c '^[a-z_]' "$SC_DIR/metrics.txt")"
  opens=$(metric 'lazyblob_requests_total{op="open",result="ok"}')
  reads=$(metric 'lazyblob_requests_total{op="read",result="ok"}')
  errors=$(metric 'lazyblob_requests_total{op="read",result="error"}')
  errors=$((errors + $(metric 'lazyblob_requests_total{op="open",result="error"}')))
  requested=$(metric 'lazyblob_read_requested_bytes_total')
  written=$(metric 'lazyblob_written_bytes_total')
  ahead=$(metric 'lazyblob_written_ahead_bytes_total')
  fact counters "file_bytes=$n opens=$opens reads=$reads errors=$errors requested=$requested written=$written ahead=$ahead"
  [ "$opens" = 1 ] || fail "requests_total{op=open,result=ok} = $opens, want 1"
  [ "$errors" = 0 ] || fail "$errors failed requests"
  [ "$reads" -gt 0 ] || fail "no READ counted"
  [ "$requested" -gt 0 ] || fail "read_requested_bytes_total = 0"
  [ "$written" -ge "$n" ] || fail "written_bytes_total $written < the $n file bytes read"
  [ "$(metric 'lazyblob_open_objects ')" = 1 ] || fail "open_objects $(metric 'lazyblob_open_objects ') with one mount"
  umount "$MNT"
  stop_daemon
}

register daemon-sigterm-while-mounted 120
sc_daemon_sigterm_while_mounted() {
  need_daemon
  import "$IMAGES/tree.erofs" "$FSID"
  start_daemon
  mount_retry "$FSID" "$MNT"
  stop_daemon
  fact exit_status "$DAEMON_RC"
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC on SIGTERM with a mount"
  umount "$MNT" 2>/dev/null || umount -l "$MNT"
}

# domain_id: two fsids in one shared domain (volume key erofs,<domain>, cookie
# key <fsid>). Kernel rules (6.12 fs/erofs/fscache.c, KERNEL_FACTS.md (j)): the
# same fsid twice in one domain is EEXIST; different fsids are fine, but the
# sysfs name "<domain_id>,<fsid>" is cut to 36 characters and two mounts whose
# names share those 36 characters fail with EEXIST too, hence the short names.
register daemon-domain-share 180
sc_daemon_domain_share() {
  need_daemon
  import "$IMAGES/tree.erofs" dsa
  import "$IMAGES/big.erofs" dsb
  start_daemon
  mkdir -p "$MNT/a" "$MNT/b" "$MNT/a2"
  mount_retry dsa "$MNT/a" "domain_id=dsd"
  mount_retry dsb "$MNT/b" "domain_id=dsd"
  r=$(check_tree "$MNT/a" "$IMAGES/tree.manifest") || fail "content a: $r"
  r=$(check_tree "$MNT/b" "$IMAGES/big.manifest") || fail "content b: $r"
  if mount_fsid dsa "$MNT/a2" "domain_id=dsd"; then
    umount "$MNT/a2"
    fail "the same fsid mounted twice in one domain"
  fi
  fact same_fsid_twice "$(tr '\n' ' ' <"$SC_DIR/mount.err")"
  grep -q "File exists" "$SC_DIR/mount.err" || fail "same fsid twice: not EEXIST: $(cat "$SC_DIR/mount.err")"
  umount "$MNT/a"
  umount "$MNT/b"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC"
}

# The kernel names an erofs mount in sysfs "<domain_id>,<fsid>" (or "<fsid>") cut
# to 36 characters: two mounts whose names agree on those fail with EEXIST, even
# with different fsids (what the first version of daemon-domain-share ran into).
register fact-sysfs-name-36 120
sc_fact_sysfs_name_36() {
  need_daemon
  long=abcdefghijklmnopqrstuvwxyz0123456789
  import "$IMAGES/tree.erofs" "${long}_a"
  import "$IMAGES/tree.erofs" "${long}_b"
  start_daemon
  mkdir -p "$MNT/a" "$MNT/b"
  mount_retry "${long}_a" "$MNT/a"
  if mount_fsid "${long}_b" "$MNT/b"; then
    fact second_mount ok
    umount "$MNT/b"
    fail "second fsid with the same 36-character prefix mounted (rule changed?)"
  fi
  fact second_mount "$(tr '\n' ' ' <"$SC_DIR/mount.err")"
  fact dmesg "$(dmesg | grep 'cannot create duplicate filename' | tail -1 | cut -c1-120)"
  grep -q "File exists" "$SC_DIR/mount.err" || fail "not EEXIST: $(cat "$SC_DIR/mount.err")"
  umount "$MNT/a"
  stop_daemon
}
