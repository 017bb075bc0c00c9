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

# import IMG ID
import() {
  "$LAZYBLOB" --store "$STORE" import "$1" --id "$2" >>"$SC_DIR/import.out" 2>&1 ||
    fail "import $1 as $2: $(tail -3 "$SC_DIR/import.out" | tr '\n' ' ')"
}

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

register daemon-restart-cache-reuse 180
sc_daemon_restart_cache_reuse() {
  need_daemon
  import "$IMAGES/tree.erofs" "$FSID"
  start_daemon
  mount_retry "$FSID" "$MNT"
  check_tree "$MNT" "$IMAGES/tree.manifest" >/dev/null || fail "content"
  umount "$MNT"
  stop_daemon
  start_daemon
  mount_retry "$FSID" "$MNT"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content after daemon restart: $r"
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
  umount "$MNT"
  mkdir -p "$MNT.x"
  if mount_fsid "${FSID}_missing" "$MNT.x"; then
    umount "$MNT.x"
    fail "mount of an id that was never imported succeeded"
  fi
  kill -0 "$DAEMON_PID" 2>/dev/null || fail "daemon died on an unknown id"
  mount_retry "$FSID" "$MNT"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content after unknown id: $r"
  umount "$MNT"
  stop_daemon
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

register daemon-metrics 120
sc_daemon_metrics() {
  need_daemon
  import "$IMAGES/tree.erofs" "$FSID"
  start_daemon --metrics-listen 127.0.0.1:9150
  mount_retry "$FSID" "$MNT"
  check_tree "$MNT" "$IMAGES/tree.manifest" >/dev/null || fail "content"
  wget -q -O "$SC_DIR/metrics.txt" http://127.0.0.1:9150/metrics || fail "GET /metrics failed"
  grep -q '^[a-z_]' "$SC_DIR/metrics.txt" || fail "no metric in /metrics"
  fact metric_lines "$(grep -c '^[a-z_]' "$SC_DIR/metrics.txt")"
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

# Not registered yet: with lazyblobd (build-engine, 2026-11-27) the second mount
# (different fsid, same domain_id) failed with EEXIST; whether that is a kernel
# rule or a daemon bug is open (check it with the probe first). Register with:
#   register daemon-domain-share 180
sc_daemon_domain_share() {
  need_daemon
  import "$IMAGES/tree.erofs" "${FSID}_a"
  import "$IMAGES/big.erofs" "${FSID}_b"
  start_daemon
  mkdir -p "$MNT/a" "$MNT/b"
  mount_retry "${FSID}_a" "$MNT/a" "domain_id=${FSID}_dom"
  mount_retry "${FSID}_b" "$MNT/b" "domain_id=${FSID}_dom"
  r=$(check_tree "$MNT/a" "$IMAGES/tree.manifest") || fail "content a: $r"
  r=$(check_tree "$MNT/b" "$IMAGES/big.manifest") || fail "content b: $r"
  umount "$MNT/a"
  umount "$MNT/b"
  stop_daemon
}
