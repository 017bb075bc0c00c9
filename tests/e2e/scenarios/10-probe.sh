#!/bin/sh
# Harness self-check with the C probe daemon (tests/e2e/probe): an EROFS image
# served through cachefiles on-demand mode mounts and reads back bit-exact.

register probe-mount 60
sc_probe_mount() {
  start_probe --blob "$FSID=$IMAGES/tree.erofs"
  mount_fsid "$FSID" "$MNT" || fail "mount: $(cat "$SC_DIR/mount.err")"
  r=$(check_tree "$MNT" "$IMAGES/tree.manifest") || fail "content: $r"
  umount "$MNT" || fail "umount failed"
  stop_probe
  fact opens "$(grep -c '^OPEN ' "$SC_DIR/probe.log")"
  fact reads "$(grep -c '^READ ' "$SC_DIR/probe.log")"
}
