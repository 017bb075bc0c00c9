#!/bin/sh
# Kernel-rule scenarios: each drives the probe in one experiment mode and checks
# the kernel behaves as the simulator assumes (tests/e2e/KERNEL_FACTS.md).
# Observations are recorded with `fact` and printed as "@@E2E FACT" lines.

# field LINE FIELD: value of FIELD=... in LINE.
field() { echo "$1" | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }

# exp_errno NAME: errno logged by the probe for experiment NAME.
exp_errno() { field "$(grep "^EXP $1 " "$SC_DIR/probe.log" | head -1)" errno; }

# wait_log PATTERN COUNT TIMEOUT_S: until COUNT lines of probe.log match.
wait_log() {
  _n=0
  while [ "$(grep -c "$1" "$SC_DIR/probe.log")" -lt "$2" ]; do
    _n=$((_n + 1))
    [ $_n -gt $(($3 * 10)) ] && return 1
    usleep 100000
  done
}

# reads_after_last_open: READ lines after the last OPEN line of probe.log.
reads_after_last_open() {
  awk '/^OPEN /{n=0} /^READ /{n++} END{print n+0}' "$SC_DIR/probe.log"
}

# (a) last partial block: whole zero-padded 4 KiB block at the aligned offset.
register fact-tail-padded 90
sc_fact_tail_padded() {
  . "$IMAGES/tail.env"
  start_probe --blob "$FSID=$IMAGES/tail.erofs" --tail=padded
  mount_fsid "$FSID" "$MNT" || fail "mount: $(cat "$SC_DIR/mount.err")"
  r=$(check_tree "$MNT" "$IMAGES/tail.manifest") || fail "content with padded tail: $r"
  fact blob_size "$TAIL_SIZE"
  fact seek_end_after_first_copen "$(grep '^EXP seek_end' "$SC_DIR/probe.log" | head -1 | cut -d' ' -f4-)"
  last=$(awk -v s="$TAIL_SIZE" '/^READ /{split($0,a," "); for(i in a){split(a[i],kv,"="); v[kv[1]]=kv[2]} if (v["off"]+v["len"] >= s) print "off=" v["off"] ",len=" v["len"]}' \
    "$SC_DIR/probe.log" | head -1)
  fact tail_read "$last"
  fact tail_write "$(grep '^WRITE ' "$SC_DIR/probe.log" | awk -v s="$TAIL_SIZE" '{split($3,o,"="); split($4,l,"="); if (o[2]+l[2] >= s) {print $3","$4","$5","$6; exit}}')"
  umount "$MNT" || fail "umount failed"
  wait_log '^CLOSE ' 1 10 || fail "no CLOSE after umount"
  # The cache file is linked into the cache dir when the object is committed.
  n=0
  while [ -z "$(cache_files)" ] && [ $n -lt 50 ]; do usleep 100000; n=$((n + 1)); done
  f=$(cache_files | head -1)
  [ -n "$f" ] || fail "no cache file under $CACHE/cache after umount"
  sz=$(stat -c %s "$f")
  fact cache_file_size "$sz"
  fact cache_file_blocks_512 "$(stat -c %b "$f")"
  want=$(((TAIL_SIZE + 4095) / 4096 * 4096))
  [ "$sz" = "$want" ] || fail "cache file size $sz, expected round_up(size,4K)=$want"
  # (g) with the padded tail: a remount sends OPEN and no READ.
  mount_fsid "$FSID" "$MNT" || fail "remount: $(cat "$SC_DIR/mount.err")"
  r=$(check_tree "$MNT" "$IMAGES/tail.manifest") || fail "content after remount: $r"
  fact reads_after_remount "$(reads_after_last_open)"
  fact seek_end_after_remount_copen "$(grep '^EXP seek_end' "$SC_DIR/probe.log" | tail -1 | cut -d' ' -f4-)"
  [ "$(reads_after_last_open)" = 0 ] || fail "remount of a fully cached blob sent READs"
  umount "$MNT"
  stop_probe
}

# (a) last partial block written short (exact remaining bytes, O_DIRECT).
register fact-tail-short 60
sc_fact_tail_short() {
  . "$IMAGES/tail.env"
  start_probe --blob "$FSID=$IMAGES/tail.erofs" --tail=short
  mount_fsid "$FSID" "$MNT" || fail "mount: $(cat "$SC_DIR/mount.err")"
  r=$(check_tree "$MNT" "$IMAGES/tail.manifest")
  fact content "${r:-ok}"
  w=$(grep '^WRITE ' "$SC_DIR/probe.log" | awk -v s="$TAIL_SIZE" '{split($3,o,"="); split($4,l,"="); if (o[2]+l[2] >= s) {print $4","$5","$6; exit}}')
  fact tail_write "$w"
  umount "$MNT"
  stop_probe
  echo "$w" | grep -q "errno=22" || fail "short O_DIRECT tail write was not rejected with EINVAL: $w"
  [ -n "$r" ] || fail "reader got the tail although its write failed"
}

# (a) last partial block rounded up to 512 bytes only (works on this 512-byte
# sector disk only: ext4 O_DIRECT needs the device's logical block size).
register fact-tail-sector 60
sc_fact_tail_sector() {
  . "$IMAGES/tail.env"
  start_probe --blob "$FSID=$IMAGES/tail.erofs" --tail=sector
  mount_fsid "$FSID" "$MNT" || fail "mount: $(cat "$SC_DIR/mount.err")"
  r=$(check_tree "$MNT" "$IMAGES/tail.manifest")
  fact content "${r:-ok}"
  w=$(grep '^WRITE ' "$SC_DIR/probe.log" | awk -v s="$TAIL_SIZE" '{split($3,o,"="); split($4,l,"="); if (o[2]+l[2] >= s) {print $4","$5","$6; exit}}')
  fact tail_write "$w"
  umount "$MNT"
  stop_probe
  [ -z "$r" ] || fail "content with a 512-rounded tail: $r"
}

# (b) unaligned offset -> ENOBUFS, unaligned buffer -> EINVAL, pread -> ESPIPE.
register fact-misaligned 60
sc_fact_misaligned() {
  start_probe --blob "$FSID=$IMAGES/tree.erofs" --misaligned
  mount_fsid "$FSID" "$MNT" || fail "mount: $(cat "$SC_DIR/mount.err")"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content: $r"
  umount "$MNT"
  stop_probe
  for e in unaligned_offset unaligned_buffer unaligned_length_1000 sector_length_512 anon_pread; do
    fact "${e}_errno" "$(exp_errno $e)"
  done
  [ "$(exp_errno unaligned_offset)" = 105 ] || fail "unaligned offset: errno $(exp_errno unaligned_offset), want ENOBUFS(105)"
  [ "$(exp_errno unaligned_buffer)" = 22 ] || fail "unaligned buffer: errno $(exp_errno unaligned_buffer), want EINVAL(22)"
  [ "$(exp_errno anon_pread)" = 29 ] || fail "pread on anon fd: errno $(exp_errno anon_pread), want ESPIPE(29)"
}

# (c) completing a READ id twice -> EINVAL.
register fact-double-complete 60
sc_fact_double_complete() {
  start_probe --blob "$FSID=$IMAGES/tree.erofs" --double-complete
  mount_fsid "$FSID" "$MNT" || fail "mount: $(cat "$SC_DIR/mount.err")"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content: $r"
  umount "$MNT"
  stop_probe
  fact double_complete_errno "$(exp_errno double_complete)"
  [ "$(exp_errno double_complete)" = 22 ] || fail "second READ_COMPLETE: errno $(exp_errno double_complete), want EINVAL(22)"
}

# (d) copen for an unknown id, without a size, or twice -> EINVAL.
register fact-copen-errors 60
sc_fact_copen_errors() {
  start_probe --blob "$FSID=$IMAGES/tree.erofs" --bad-copen
  mount_fsid "$FSID" "$MNT" || fail "mount: $(cat "$SC_DIR/mount.err")"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content: $r"
  umount "$MNT"
  stop_probe
  for e in copen_unknown_id copen_no_size copen_duplicate; do
    fact "${e}_errno" "$(exp_errno $e)"
    [ "$(exp_errno $e)" = 22 ] || fail "$e: errno $(exp_errno $e), want EINVAL(22)"
  done
}

# copen of an unknown cookie with a negative errno (-ENOENT): the mount fails,
# not with that errno: EIO in one run, ENOBUFS in another (racy).
register fact-copen-negative 60
sc_fact_copen_negative() {
  start_probe --blob "other=$IMAGES/tree.erofs"
  if mount_fsid "$FSID" "$MNT"; then
    fail "mount of a blob answered copen -ENOENT succeeded"
  fi
  fact mount_error "$(cat "$SC_DIR/mount.err" | tr '\n' ' ')"
  grep -qE "Input/output error|No buffer space available" "$SC_DIR/mount.err" ||
    fail "mount error is neither EIO nor ENOBUFS: $(cat "$SC_DIR/mount.err")"
  stop_probe
}

# (e) one READ completed without data: what the reader sees, what comes next.
register fact-no-data-once 90
sc_fact_no_data_once() {
  start_probe --blob "$FSID=$IMAGES/big.erofs" --no-data-from=2097152 --no-data-count=1
  mount_fsid "$FSID" "$MNT" || fail "mount: $(cat "$SC_DIR/mount.err")"
  if cat "$MNT/big.bin" >/dev/null 2>"$SC_DIR/cat.err"; then res=ok; else res="error: $(cat "$SC_DIR/cat.err")"; fi
  fact first_reader "$res"
  fact after_nodata "$(awk '/^NODATA /{f=1; print; next} f && /^READ /{print $4","$5; if (++n == 4) exit}' "$SC_DIR/probe.log" | tr '\n' ';')"
  r=$(check_tree "$MNT" "$IMAGES/big.manifest")
  fact second_reader "${r:-ok}"
  [ -z "$r" ] || fail "content still wrong on a second read: $r"
  umount "$MNT"
  stop_probe
}

# (e) every data READ completed without data: the reader gets EIO.
register fact-no-data-always 90
sc_fact_no_data_always() {
  start_probe --blob "$FSID=$IMAGES/big.erofs" --no-data-from=2097152 --no-data-count=100000
  mount_fsid "$FSID" "$MNT" || fail "mount: $(cat "$SC_DIR/mount.err")"
  dd if="$MNT/big.bin" of=/dev/null bs=65536 skip=40 count=1 2>"$SC_DIR/dd.err"
  rc=$?
  fact reader "rc=$rc $(grep -v records "$SC_DIR/dd.err" | tr '\n' ' ')"
  fact reads_after_nodata "$(awk '/^NODATA /{print $4","$5}' "$SC_DIR/probe.log" | head -8 | tr '\n' ';')"
  [ $rc != 0 ] || fail "reader succeeded although no READ got data"
  grep -q "Input/output error" "$SC_DIR/dd.err" || fail "reader error is not EIO: $(cat "$SC_DIR/dd.err")"
  umount "$MNT"
  stop_probe
}

# (f) object ids from 1 per device open, msg ids distinct and not reused at once;
# (h) read() with nothing pending returns 0.
register fact-ids 60
sc_fact_ids() {
  start_probe --blob "${FSID}_a=$IMAGES/tree.erofs" --blob "${FSID}_b=$IMAGES/big.erofs"
  mkdir -p "$MNT/a" "$MNT/b"
  mount_fsid "${FSID}_a" "$MNT/a" || fail "mount a: $(cat "$SC_DIR/mount.err")"
  mount_fsid "${FSID}_b" "$MNT/b" || fail "mount b: $(cat "$SC_DIR/mount.err")"
  cat "$MNT/b/big.bin" >/dev/null
  umount "$MNT/a"
  umount "$MNT/b"
  stop_probe
  idle=$(field "$(grep '^EXP idle_read' "$SC_DIR/probe.log")" ret)
  fact idle_read_ret "$idle"
  objs=$(probe_log_field OPEN obj | tr '\n' ',')
  fact open_object_ids "$objs"
  fact open_volume_keys "$(probe_log_field OPEN vol | tr '\n' ',')"
  fact open_cookie_keys "$(probe_log_field OPEN cookie | tr '\n' ',')"
  fact open_flags "$(probe_log_field OPEN flags | sort -u | tr '\n' ',')"
  ids=$(grep -E '^(OPEN|READ|CLOSE) ' "$SC_DIR/probe.log" | sed -n 's/.* msg=\([0-9]*\).*/\1/p')
  fact first_msg_ids "$(echo "$ids" | head -12 | tr '\n' ',')"
  fact msg_count "$(echo "$ids" | wc -l)"
  fact distinct_msg_ids "$(echo "$ids" | sort -un | wc -l)"
  [ "$idle" = 0 ] || fail "idle read() returned $idle, want 0"
  [ "$objs" = "1,2," ] || fail "object ids $objs, want 1,2"
  [ "$(echo "$ids" | wc -l)" = "$(echo "$ids" | sort -un | wc -l)" ] || fail "a msg id was reused"
  [ "$(echo "$ids" | head -1)" = 0 ] || fail "first msg id $(echo "$ids" | head -1), want 0"
}

# (g) remount of a fully cached blob: OPEN and no READ.
register fact-remount-cached 90
sc_fact_remount_cached() {
  start_probe --blob "$FSID=$IMAGES/tree.erofs"
  mount_fsid "$FSID" "$MNT" || fail "mount: $(cat "$SC_DIR/mount.err")"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content: $r"
  # Reading every file cached every block the second pass reads.
  umount "$MNT"
  wait_log '^CLOSE ' 1 10 || fail "no CLOSE after umount"
  fact reads_first_mount "$(grep -c '^READ ' "$SC_DIR/probe.log")"
  mount_fsid "$FSID" "$MNT" || fail "remount: $(cat "$SC_DIR/mount.err")"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content after remount: $r"
  fact reads_after_remount "$(reads_after_last_open)"
  umount "$MNT"
  stop_probe
}

# (i) READ sizes for a sequential read, default readahead and 1 MiB readahead.
register fact-readahead 120
sc_fact_readahead() {
  start_probe --blob "$FSID=$IMAGES/big.erofs" --blob "${FSID}_4k=$IMAGES/big.erofs"
  mount_fsid "$FSID" "$MNT" || fail "mount: $(cat "$SC_DIR/mount.err")"
  bdi=$(ls /sys/class/bdi | grep -i erofs | head -1)
  fact bdi "$bdi read_ahead_kb=$(cat /sys/class/bdi/$bdi/read_ahead_kb 2>/dev/null)"
  before=$(grep -c '^READ ' "$SC_DIR/probe.log")
  cat "$MNT/big.bin" >/dev/null || fail "read failed"
  fact read_sizes_default "$(sed -n 's/^READ .* len=\([0-9]*\).*/\1/p' "$SC_DIR/probe.log" | tail -n +$((before + 1)) | head -16 | tr '\n' ',')"
  fact read_size_histogram "$(sed -n 's/^READ .* len=\([0-9]*\).*/\1/p' "$SC_DIR/probe.log" | tail -n +$((before + 1)) | sort -n | uniq -c | awk '{printf "%sx%s ", $1, $2}')"
  # 4 KiB sequential reads (dd bs=4096) on a second, cold object.
  mkdir -p "$MNT.4k"
  mount_fsid "${FSID}_4k" "$MNT.4k" || fail "mount 4k: $(cat "$SC_DIR/mount.err")"
  before=$(grep -c '^READ ' "$SC_DIR/probe.log")
  dd if="$MNT.4k/big.bin" of=/dev/null bs=4096 count=512 2>/dev/null || fail "dd 4k failed"
  fact read_sizes_dd4k "$(sed -n 's/^READ .* len=\([0-9]*\).*/\1/p' "$SC_DIR/probe.log" | tail -n +$((before + 1)) | head -16 | tr '\n' ',')"
  umount "$MNT.4k"
  umount "$MNT"
  stop_probe
  # Second pass with 1 MiB readahead on a fresh cache.
  rm -rf "$CACHE" && mkdir -p "$CACHE"
  : >"$SC_DIR/probe.log"
  start_probe --blob "${FSID}_ra=$IMAGES/big.erofs"
  mount_fsid "${FSID}_ra" "$MNT" || fail "mount 2: $(cat "$SC_DIR/mount.err")"
  bdi=$(ls -t /sys/class/bdi | grep -i erofs | head -1)
  for b in $(ls /sys/class/bdi | grep -i erofs); do echo 1024 >/sys/class/bdi/$b/read_ahead_kb; done
  before=$(grep -c '^READ ' "$SC_DIR/probe.log")
  cat "$MNT/big.bin" >/dev/null || fail "read 2 failed"
  fact read_sizes_ra1m "$(sed -n 's/^READ .* len=\([0-9]*\).*/\1/p' "$SC_DIR/probe.log" | tail -n +$((before + 1)) | head -16 | tr '\n' ',')"
  umount "$MNT"
  stop_probe
}
