#!/bin/sh
# Daemon scenarios against the real kernel: random reads, a corrupted chunk, the
# worker killed mid-read, CLOSE and cached remounts, SIGTERM during reads.
# Helpers (need_daemon, import, start_daemon, scrape, metric, ...) are in 50-daemon.sh.

# Random-offset reads: the 200 seeded ranges of big.ranges ("OFFSET LENGTH SHA256",
# computed on the host from big.bin) read with dd from a CDC-chunked import, cold,
# without write-ahead, so the READs arrive in random order.
register daemon-random-reads 240
sc_daemon_random_reads() {
  need_daemon
  import "$IMAGES/big.erofs" "$FSID" --chunker cdc
  start_daemon --write-ahead 0
  mount_retry "$FSID" "$MNT"
  n=0
  bad=0
  while read -r off len want; do
    got=$(dd if="$MNT/big.bin" bs=4096 iflag=skip_bytes,count_bytes skip="$off" count="$len" 2>>"$SC_DIR/dd.err" |
      sha256sum | cut -d' ' -f1)
    n=$((n + 1))
    if [ "$got" != "$want" ]; then
      bad=$((bad + 1))
      echo "off=$off len=$len got=$got want=$want" >>"$SC_DIR/mismatch"
    fi
  done <"$IMAGES/big.ranges"
  fact ranges "$n read, $bad wrong"
  [ "$n" = 200 ] || fail "read $n ranges, want 200"
  [ "$bad" = 0 ] || fail "$bad of $n ranges wrong, first: $(head -1 "$SC_DIR/mismatch")"
  kill -0 "$DAEMON_PID" 2>/dev/null || fail "daemon died"
  umount "$MNT"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC"
}

# flip_byte FILE OFFSET: adds 1 (mod 256) to the byte at OFFSET.
flip_byte() {
  _b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
  # shellcheck disable=SC2059 # the octal escape is the format
  printf "\\$(printf %03o $(((_b + 1) % 256)))" | dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
}

# A corrupted chunk: one byte flipped in the middle of the tree's chunk records
# (pack payload). The file that needs that chunk reads EIO, every other file reads
# right, no file reads wrong bytes, and the daemon goes on serving (a cold mount
# of another image afterwards).
register daemon-corrupt-chunk 180
sc_daemon_corrupt_chunk() {
  need_daemon
  import "$IMAGES/tree.erofs" "${FSID}_a"
  pack=$(ls "$STORE"/packs/pack-*.lbp | tail -1)
  tree_end=$(stat -c %s "$pack")
  import "$IMAGES/big.erofs" "${FSID}_b"
  off=$((tree_end / 2))
  flip_byte "$pack" "$off"
  fact flipped "$(basename "$pack") offset $off of the tree's $tree_end bytes"
  start_daemon
  mount_retry "${FSID}_a" "$MNT"
  ok=0
  eio=0
  while read -r want path; do
    if cat "$MNT/$path" >"$SC_DIR/file" 2>"$SC_DIR/cat.err"; then
      got=$(sha256sum "$SC_DIR/file" | cut -d' ' -f1)
      [ "$got" = "$want" ] || fail "$path read without error but wrong content"
      ok=$((ok + 1))
    else
      grep -q "Input/output error" "$SC_DIR/cat.err" || fail "$path: not EIO: $(cat "$SC_DIR/cat.err")"
      eio=$((eio + 1))
      echo "$path" >>"$SC_DIR/eio.files"
    fi
  done <"$IMAGES/tree.manifest"
  rm -f "$SC_DIR/file"
  fact files "ok=$ok eio=$eio ($(tr '\n' ' ' <"$SC_DIR/eio.files" 2>/dev/null))"
  fact daemon_log "$(grep -m1 'not served' "$SC_DIR/daemon.log" | cut -c1-220)"
  [ "$eio" -ge 1 ] || fail "no file failed although a chunk was corrupted"
  [ "$ok" -ge 1 ] || fail "every file failed: one bad chunk should break only its files"
  grep -q "not served" "$SC_DIR/daemon.log" || fail "the daemon did not log the bad chunk"
  kill -0 "$DAEMON_PID" 2>/dev/null || fail "daemon died on a corrupt chunk"
  mkdir -p "$MNT.b"
  mount_retry "${FSID}_b" "$MNT.b"
  r=$(check_tree "$MNT.b" "$IMAGES/big.manifest") || fail "other image after the corrupt chunk: $r"
  umount "$MNT.b"
  umount "$MNT"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC"
}

# slow_read_setup: big imported in 16 KiB chunks, no write-ahead, 16 KiB readahead:
# one READ per 16 KiB, 512 READs for the 8 MiB file: seconds under TCG.
slow_read_setup() {
  need_daemon
  import "$IMAGES/big.erofs" "$FSID" --chunker fixed --avg-chunk 16K --min-chunk 16K --max-chunk 16K
  start_daemon --write-ahead 0 "$@"
  mount_retry "$FSID" "$MNT"
  set_readahead 16
}

# start_reader I: sha256 of big.bin read with dd bs=4096 in the background;
# writes $SC_DIR/reader.I.{sha,rc,err} and then reader.I.done.
start_reader() {
  ({
    dd if="$MNT/big.bin" bs=4096 2>"$SC_DIR/reader.$1.err"
    echo $? >"$SC_DIR/reader.$1.rc"
  } | sha256sum | cut -d' ' -f1 >"$SC_DIR/reader.$1.sha"
  touch "$SC_DIR/reader.$1.done") &
}

# kill -9 of the worker (not the supervisor) during a sequential read: the
# supervisor restarts it with restore, the kernel re-sends the open object and the
# pending READs, and the read completes bit-exact.
register daemon-kill-worker 240
sc_daemon_kill_worker() {
  slow_read_setup
  w=$(worker_pid)
  [ -n "$w" ] && [ "$w" != "$DAEMON_PID" ] || fail "no worker pid in the daemon log"
  # The first half is served normally; then the worker is stopped, so the reader's next
  # READs stay pending in the kernel and the kill lands mid-read however fast the machine
  # is (a timed race failed on a quiet machine: the whole read finished first).
  dd if="$MNT/big.bin" of=/dev/null bs=4096 count=1024 2>/dev/null || fail "reading the first half"
  kill -STOP "$w"
  start_reader 1
  usleep 1000000
  [ -e "$SC_DIR/reader.1.done" ] && fail "the read finished while the worker was stopped"
  kill -KILL "$w"
  fact killed_worker "$w (supervisor $DAEMON_PID)"
  wait_done "$SC_DIR/reader.1.done" 120 "the reader"
  fact reader "rc=$(cat "$SC_DIR/reader.1.rc") $(grep -v records "$SC_DIR/reader.1.err" | tr '\n' ' ')"
  [ "$(cat "$SC_DIR/reader.1.rc")" = 0 ] || fail "reader failed: $(cat "$SC_DIR/reader.1.err")"
  [ "$(cat "$SC_DIR/reader.1.sha")" = "$(cut -d' ' -f1 "$IMAGES/big.manifest")" ] || fail "content after the worker restart differs"
  grep -q "worker $w died" "$SC_DIR/daemon.log" || fail "supervisor did not log the worker's death"
  grep -q "started (restore)" "$SC_DIR/daemon.log" || fail "no restarted worker (restore) in the log"
  fact restart_log "$(grep -E "worker $w died|started \(restore\)" "$SC_DIR/daemon.log" | cut -d']' -f4- | tr '\n' ';')"
  [ "$(worker_pid)" != "$w" ] || fail "worker pid unchanged"
  umount "$MNT"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC"
}

# Issue 14 (7): kill -9 of a worker that has TAKEN a READ and not answered it (the
# hold_read failpoint keeps the READ covering image offset 4 MiB unanswered in the first
# worker). The kernel must re-deliver that READ to the next worker after `restore`: the
# reader completes bit-exact and the new worker logs the READ as re-delivered.
register daemon-kill-held-read 240
sc_daemon_kill_held_read() {
  export LAZYBLOB_FAILPOINT=hold_read:4194304
  slow_read_setup
  unset LAZYBLOB_FAILPOINT
  start_reader 1
  _i=0
  until grep -q "failpoint hold_read: holding READ" "$SC_DIR/daemon.log"; do
    _i=$((_i + 1))
    [ $_i -ge 300 ] && fail "no READ held within 30 s"
    [ -e "$SC_DIR/reader.1.done" ] && fail "the read finished without the held READ"
    usleep 100000
  done
  fact held "$(grep "failpoint hold_read: holding READ" "$SC_DIR/daemon.log" | cut -d']' -f4-)"
  usleep 500000
  [ -e "$SC_DIR/reader.1.done" ] && fail "the read finished while its READ was held"
  w=$(worker_pid)
  [ -n "$w" ] && [ "$w" != "$DAEMON_PID" ] || fail "no worker pid in the daemon log"
  kill -KILL "$w"
  wait_done "$SC_DIR/reader.1.done" 120 "the reader"
  fact reader "rc=$(cat "$SC_DIR/reader.1.rc") $(grep -v records "$SC_DIR/reader.1.err" | tr '\n' ' ')"
  [ "$(cat "$SC_DIR/reader.1.rc")" = 0 ] || fail "reader failed: $(cat "$SC_DIR/reader.1.err")"
  [ "$(cat "$SC_DIR/reader.1.sha")" = "$(cut -d' ' -f1 "$IMAGES/big.manifest")" ] || fail "content after the worker restart differs"
  n=$(grep -c "re-delivered after the previous worker died" "$SC_DIR/daemon.log")
  fact reads_redelivered "$n: $(grep "re-delivered after" "$SC_DIR/daemon.log" | cut -d']' -f4- | head -3 | tr '\n' ';')"
  [ "$n" -ge 1 ] || fail "no READ re-delivered after the kill"
  umount "$MNT"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC"
}

# Issue 14 (2): a worker killed while its mount is idle. After `restore` 6.12 reopens the
# object only at its next READ, so the new worker has not opened the blob; the leases the
# supervisor kept must make `lazyblob rm` refuse (busy, exit 2), and the rest of the file
# then reads bit-exact.
register daemon-rm-after-restart 240
sc_daemon_rm_after_restart() {
  slow_read_setup
  dd if="$MNT/big.bin" of=/dev/null bs=4096 count=256 2>/dev/null || fail "reading the start"
  w=$(worker_pid)
  [ -n "$w" ] && [ "$w" != "$DAEMON_PID" ] || fail "no worker pid in the daemon log"
  kill -KILL "$w"
  _i=0
  until [ "$(grep -c 'serving store' "$SC_DIR/daemon.log")" -ge 2 ]; do
    _i=$((_i + 1))
    [ $_i -ge 300 ] && fail "no new worker within 30 s"
    usleep 100000
  done
  "$LAZYBLOB" --store "$STORE" rm "$FSID" >"$SC_DIR/rm.out" 2>&1
  rc=$?
  fact rm "exit $rc: $(head -2 "$SC_DIR/rm.out" | tr '\n' ' ')"
  fact kept "$(grep 'holding the leases' "$SC_DIR/daemon.log" | cut -d']' -f4-)"
  [ "$rc" = 2 ] || fail "rm of a mounted blob after a worker restart: exit $rc, want 2 (busy)"
  sum=$(cat "$MNT/big.bin" | sha256sum | cut -d' ' -f1)
  [ "$sum" = "$(cut -d' ' -f1 "$IMAGES/big.manifest")" ] || fail "content after the restart differs"
  umount "$MNT"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC"
}

# SIGTERM during reads: three readers of a slow cold read; the daemon drains and
# exits 0; every reader returns (right content or an error, never wrong bytes).
register daemon-sigterm-reads 180
sc_daemon_sigterm_reads() {
  slow_read_setup
  w=$(worker_pid)
  [ -n "$w" ] || fail "no worker pid in the daemon log"
  # A stopped worker keeps the readers' READs pending, so SIGTERM lands mid-read on any
  # machine; the worker continues 0.3 s after the SIGTERM and must drain.
  kill -STOP "$w"
  for i in 1 2 3; do
    start_reader $i
    usleep 300000
  done
  usleep 500000
  running=0
  for i in 1 2 3; do [ -e "$SC_DIR/reader.$i.done" ] || running=$((running + 1)); done
  (usleep 300000; kill -CONT "$w") &
  stop_daemon
  fact daemon "exit=$DAEMON_RC, $running readers running at SIGTERM"
  [ "$running" -ge 1 ] || fail "every read finished before SIGTERM (make it slower)"
  want=$(cut -d' ' -f1 "$IMAGES/big.manifest")
  out=
  for i in 1 2 3; do
    wait_done "$SC_DIR/reader.$i.done" 60 "reader $i"
    rc=$(cat "$SC_DIR/reader.$i.rc")
    if [ "$rc" = 0 ]; then
      [ "$(cat "$SC_DIR/reader.$i.sha")" = "$want" ] || fail "reader $i completed with wrong content"
      out="$out $i:ok"
    else
      out="$out $i:rc=$rc($(grep -v records "$SC_DIR/reader.$i.err" | head -1))"
    fi
  done
  fact readers "$out"
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC after SIGTERM"
  grep -q "finishing requests in flight" "$SC_DIR/daemon.log" || fail "worker did not log the drain"
  umount "$MNT" 2>/dev/null || umount -l "$MNT"
}

# umount sends CLOSE (open_objects back to 0, close ok = 1); a remount of the
# fully cached blob sends OPEN and no READ.
register daemon-close-remount 150
sc_daemon_close_remount() {
  need_daemon
  import "$IMAGES/tree.erofs" "$FSID"
  start_daemon --metrics-listen 127.0.0.1:9170
  mount_retry "$FSID" "$MNT"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content: $r"
  scrape 9170
  [ "$(metric 'lazyblob_open_objects ')" = 1 ] || fail "open_objects $(metric 'lazyblob_open_objects ') while mounted"
  reads=$(metric 'lazyblob_requests_total{op="read"')
  umount "$MNT" || fail "umount"
  i=0
  while :; do
    scrape 9170
    [ "$(metric 'lazyblob_open_objects ')" = 0 ] && break
    i=$((i + 1))
    [ $i -ge 50 ] && fail "open_objects still $(metric 'lazyblob_open_objects ') 10 s after umount (no CLOSE?)"
    usleep 200000
  done
  closes=$(metric 'lazyblob_requests_total{op="close",result="ok"}')
  [ "$closes" = 1 ] || fail "close ok = $closes after one umount"
  mount_retry "$FSID" "$MNT"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content after remount: $r"
  scrape 9170
  reads2=$(metric 'lazyblob_requests_total{op="read"')
  opens=$(metric 'lazyblob_requests_total{op="open",result="ok"}')
  fact counters "reads_first_mount=$reads reads_after_remount=$((reads2 - reads)) opens=$opens closes=$closes"
  [ "$opens" = 2 ] || fail "open ok = $opens after two mounts"
  [ "$reads2" = "$reads" ] || fail "remount of a fully cached blob sent $((reads2 - reads)) READs"
  umount "$MNT"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC"
}

# fd exhaustion (issue 14, item 1): the daemon runs with 64 fds (soft and hard, so its
# raise to the hard limit changes nothing) and 100 blobs are mounted. Each open object
# costs the daemon an anon fd and a lease fd, so later OPENs fail: in the daemon (EMFILE
# opening its own files; the OPEN is answered with an error) or in the kernel (EMFILE
# installing the anon fd: the device read fails, counted as pressure and retried). Either
# way those mounts fail with EIO, the earlier mounts keep reading, the daemon stays up, and
# once mounts go away a new one succeeds without a restart. (100 imports used to leave
# ~250 index tables, all kept open by the daemon's RocksDB secondary: it could not even
# open the store; store_index.cc.)
register daemon-fd-limit 420
sc_daemon_fd_limit() {
  need_daemon
  n=100
  i=0
  while [ $i -lt $n ]; do
    import "$IMAGES/tree.erofs" "${FSID}_$i"
    i=$((i + 1))
  done
  fact index_tables "$(ls "$STORE"/index/*.sst | wc -l) after $n imports"
  (ulimit -n 64 && exec "$LAZYBLOBD" --store "$STORE" --cache-dir "$CACHE" --log-level info \
    --metrics-listen 127.0.0.1:9190) >>"$SC_DIR/daemon.log" 2>&1 &
  DAEMON_PID=$!
  mkdir -p "$MNT/0"
  mount_retry "${FSID}_0" "$MNT/0"
  ok=1
  failed=0
  i=1
  while [ $i -lt $n ]; do
    mkdir -p "$MNT/$i"
    if mount_fsid "${FSID}_$i" "$MNT/$i"; then
      ok=$((ok + 1))
    else
      failed=$((failed + 1))
      [ -s "$SC_DIR/first.err" ] || cp "$SC_DIR/mount.err" "$SC_DIR/first.err"
    fi
    i=$((i + 1))
  done
  fact mounts "$ok of $n mounted, $failed refused (first: $(head -1 "$SC_DIR/first.err" 2>/dev/null))"
  kill -0 "$DAEMON_PID" 2>/dev/null || fail "the daemon died under fd exhaustion: $(tail -3 "$SC_DIR/daemon.log" | tr '\n' ' ')"
  [ "$failed" -ge 1 ] || fail "all $n mounts succeeded with 64 fds: the limit did not bite"
  r=$(check_tree "$MNT/0" "$IMAGES/tree.manifest") || fail "the first mount after exhaustion: $r"
  scrape 9190
  fact counters "device_read_pressure_total=$(metric 'lazyblob_device_read_pressure_total') open_errors=$(metric 'lazyblob_requests_total{op="open",result="error"}')"
  fact refusal "$(grep -m1 'refused' "$SC_DIR/daemon.log" | cut -d']' -f4- | cut -c1-200)"
  if grep -q 'worker .* died' "$SC_DIR/daemon.log"; then
    fail "a worker died: $(grep -m1 'worker .* died' "$SC_DIR/daemon.log")"
  fi
  i=0
  while [ $i -lt $n ]; do
    umount "$MNT/$i" 2>/dev/null
    i=$((i + 1))
  done
  # fds come back with the mounts: a blob refused before mounts now, same daemon.
  last=$((n - 1))
  mount_retry "${FSID}_$last" "$MNT/$last"
  r=$(check_tree "$MNT/$last" "$IMAGES/tree.manifest") || fail "a mount after the others went away: $r"
  umount "$MNT/$last"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC"
}
