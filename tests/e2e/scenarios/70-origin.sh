# Registry origin (issue 11) on the real kernel: a real docker-registry runs inside the
# guest on its loopback; images are pushed there from a build store, and lazyblobd starts
# with no store of its own, only --origin and an empty origin cache.

# start_registry: docker-registry on 127.0.0.1:5000, storage in $CACHE.registry.
start_registry() {
  [ -x /e2e/bin/docker-registry ] || skip "docker-registry not in the initramfs"
  ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
  mkdir -p "$CACHE.registry"
  cat >"$SC_DIR/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $CACHE.registry
http:
  addr: 127.0.0.1:5000
  secret: lazyblob-e2e
YAML
  /e2e/bin/docker-registry serve "$SC_DIR/registry.yml" >"$SC_DIR/registry.log" 2>&1 &
  REGISTRY_PID=$!
  _i=0
  until wget -q -O /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null; do
    kill -0 "$REGISTRY_PID" 2>/dev/null || fail "registry exited: $(tail -3 "$SC_DIR/registry.log" | tr '\n' ' ')"
    _i=$((_i + 1))
    [ $_i -ge 100 ] && fail "registry did not answer in 20 s"
    usleep 200000
  done
}

# push IMG ID [IMPORT_ARGS]: import into the build store, push to the guest's registry.
push() {
  _img=$1
  _id=$2
  shift 2
  "$LAZYBLOB" --store "$CACHE.build" import "$_img" --id "$_id" "$@" >>"$SC_DIR/push.out" 2>&1 ||
    fail "import $_id: $(tail -3 "$SC_DIR/push.out" | tr '\n' ' ')"
  "$LAZYBLOB" --store "$CACHE.build" push --registry http://127.0.0.1:5000/e2e "$_id" \
    >>"$SC_DIR/push.out" 2>&1 || fail "push $_id: $(tail -3 "$SC_DIR/push.out" | tr '\n' ' ')"
}

# start_origin_daemon [ARGS]: lazyblobd with no local store, only the registry.
start_origin_daemon() {
  "$LAZYBLOBD" --origin http://127.0.0.1:5000/e2e --origin-cache "$CACHE.origin" \
    --origin-timeout 20 --cache-dir "$CACHE" --log-level debug "$@" >>"$SC_DIR/daemon.log" 2>&1 &
  DAEMON_PID=$!
}

# Two images mounted by fsid from an empty node, every file checked; then kill -9 of the
# worker while it fetches costs a reader nothing.
register origin-mount-and-kill 420
sc_origin_mount_and_kill() {
  need_daemon
  start_registry
  push "$IMAGES/tree.erofs" "$FSID-a"
  push "$IMAGES/tree2.erofs" "$FSID-b"
  push "$IMAGES/big.erofs" "$FSID-c" --chunker fixed --avg-chunk 16K --min-chunk 16K --max-chunk 16K
  start_origin_daemon --metrics-listen 127.0.0.1:9170 --write-ahead 0
  mkdir -p "$MNT.b"
  mount_retry "$FSID-a" "$MNT"
  mount_retry "$FSID-b" "$MNT.b"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "tree through the registry: $r"
  r=$(check_tree "$MNT.b" "$IMAGES/tree2.manifest") || fail "tree2 through the registry: $r"
  scrape 9170
  fetched=$(metric 'lazyblob_origin_chunks_total{result="fetched"')
  rejected=$(metric 'lazyblob_origin_chunks_total{result="rejected"')
  fact fetched_chunks "$fetched (rejected $rejected)"
  fact range_requests "$(metric 'lazyblob_origin_requests_total{op="range",result="ok"')"
  [ "$fetched" -gt 0 ] || fail "no chunk was fetched from the registry"
  [ "$rejected" = 0 ] || fail "$rejected chunks failed their hash"
  umount "$MNT.b"
  umount "$MNT"

  # kill -9 mid-fetch: 16 KiB READs of the 8 MiB file, each a Range GET.
  mount_retry "$FSID-c" "$MNT"
  set_readahead 16
  w=$(worker_pid)
  [ -n "$w" ] && [ "$w" != "$DAEMON_PID" ] || fail "no worker pid in the daemon log"
  dd if="$MNT/big.bin" of=/dev/null bs=4096 count=1024 2>/dev/null || fail "reading the first half"
  kill -STOP "$w"
  start_reader 1
  usleep 1000000
  [ -e "$SC_DIR/reader.1.done" ] && fail "the read finished while the worker was stopped"
  kill -KILL "$w"
  fact killed_worker "$w"
  wait_done "$SC_DIR/reader.1.done" 240 "the reader"
  [ "$(cat "$SC_DIR/reader.1.rc")" = 0 ] || fail "reader failed: $(cat "$SC_DIR/reader.1.err")"
  [ "$(cat "$SC_DIR/reader.1.sha")" = "$(cut -d' ' -f1 "$IMAGES/big.manifest")" ] ||
    fail "content after the worker restart differs"
  grep -q "started (restore)" "$SC_DIR/daemon.log" || fail "no restarted worker (restore) in the log"
  umount "$MNT"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC"
  kill "$REGISTRY_PID"
  "$LAZYBLOB" --store "$CACHE.origin/store" verify >"$SC_DIR/verify.out" 2>&1 ||
    fail "the origin cache does not verify: $(tail -3 "$SC_DIR/verify.out" | tr '\n' ' ')"
}

# origin_node N ARGS...: lazyblobd number N of this scenario, a node of its own: its own
# kernel cache dir and origin cache (node 1 uses $CACHE), its own log daemon.N.log.
origin_node() {
  _n=$1
  shift
  _dir=$CACHE
  [ "$_n" = 1 ] || { _dir=$CACHE.$_n; mkdir -p "$_dir"; }
  "$LAZYBLOBD" --origin http://127.0.0.1:5000/e2e --origin-cache "$CACHE.origin$_n" \
    --origin-timeout 20 --cache-dir "$_dir" --log-level debug "$@" \
    >>"$SC_DIR/daemon.$_n.log" 2>&1 &
  DAEMON_PID=$!
}

# no_refused_writes N: the kernel refuses anon-fd writes until the cache file is attached
# (ENOBUFS, "No buffer space available"); a daemon writing ahead of demand too early would
# log such failures.
no_refused_writes() {
  if grep -q "No buffer space" "$SC_DIR/daemon.$1.log"; then
    fail "node $1 wrote before the cache file was attached: $(grep -m1 "No buffer space" "$SC_DIR/daemon.$1.log")"
  fi
}

# Issue 16 on the real kernel: node 1 records a start (every file read), the record goes
# up with `lazyblob push`; node 2 (new kernel cache, empty origin cache) fetches it at OPEN
# and replays it, writing only after the mount's first READ proved the cache file attached.
# Node 3 does the same with --prefetch (the whole blob). Every file reads back right, and
# no write ahead of demand is refused.
register origin-record-replay 480
sc_origin_record_replay() {
  need_daemon
  start_registry
  push "$IMAGES/tree.erofs" "$FSID"
  origin_node 1 --trace-record 600 --no-trace-replay --write-ahead 0
  mount_retry "$FSID" "$MNT"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "node 1: $r"
  umount "$MNT"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "node 1 exit status $DAEMON_RC"
  set -- "$CACHE.origin1/traces/"*.trace
  [ -f "$1" ] || fail "node 1 saved no record: $(ls "$CACHE.origin1" | tr '\n' ' ')"
  mkdir -p "$CACHE.build/traces"
  cp "$1" "$CACHE.build/traces/"
  "$LAZYBLOB" --store "$CACHE.build" push --registry http://127.0.0.1:5000/e2e "$FSID" --json \
    >"$SC_DIR/push-record.json" 2>&1 || fail "pushing the record: $(tail -3 "$SC_DIR/push-record.json")"
  chunks=$(tr -d ' \n' <"$SC_DIR/push-record.json" | sed -n 's/.*"trace":{[^}]*"chunks":\([0-9]*\).*/\1/p')
  fact record_chunks "$chunks"
  [ -n "$chunks" ] && [ "$chunks" -gt 0 ] || fail "push published no record: $(cat "$SC_DIR/push-record.json")"

  origin_node 2 --metrics-listen 127.0.0.1:9172 --write-ahead 0
  mount_retry "$FSID" "$MNT"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "node 2: $r"
  scrape 9172
  replayed=$(metric 'lazyblob_prefetch_bytes_total')
  fact replayed_bytes "$replayed"
  fact replay_hits "$(metric 'lazyblob_prefetch_hits_total')"
  grep -q "access record of" "$SC_DIR/daemon.2.log" || fail "node 2 did not fetch the record"
  [ "$replayed" -gt 0 ] || fail "node 2 replayed nothing"
  umount "$MNT"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "node 2 exit status $DAEMON_RC"
  no_refused_writes 2

  origin_node 3 --metrics-listen 127.0.0.1:9173 --prefetch --no-trace-replay --write-ahead 0
  mount_retry "$FSID" "$MNT"
  total=$("$LAZYBLOB" --store "$CACHE.build" stat "$FSID" --json | sed -n 's/.*"chunks": *\([0-9]*\).*/\1/p' | head -1)
  _i=0
  fetched=0
  while [ $_i -lt 120 ]; do
    scrape 9173
    fetched=$(metric 'lazyblob_origin_chunks_total{result="fetched"')
    [ "$fetched" -ge "$total" ] && break
    usleep 500000
    _i=$((_i + 1))
  done
  fact prefetched_chunks "$fetched of $total"
  [ "$fetched" -ge "$total" ] || fail "node 3 prefetched $fetched of $total chunks in 60 s"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "node 3: $r"
  umount "$MNT"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "node 3 exit status $DAEMON_RC"
  no_refused_writes 3
  kill "$REGISTRY_PID"
}
