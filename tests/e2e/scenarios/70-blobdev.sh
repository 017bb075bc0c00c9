#!/bin/sh
# The cachefiles front end serving nydus's layout (mkfs.erofs --blobdev): metadata images
# whose file data lives on an extra device. The kernel OPENs the device by its tag, the
# `device=` mount option, which is the device's blob id in the store. Two images share
# one blob device: each mounted on its own volume, then both in one domain (where the
# kernel shares the device's cache object by name). Every file is checked.

register daemon-blobdev 300
sc_daemon_blobdev() {
  need_daemon
  import "$IMAGES/meta1.erofs" meta1
  import "$IMAGES/meta2.erofs" meta2
  import "$IMAGES/blobdev.erofs" blobdev --force  # a raw blob device: no superblock
  start_daemon
  mkdir -p "$MNT.2"
  mount_retry meta1 "$MNT" "device=blobdev"
  mount_retry meta2 "$MNT.2" "device=blobdev"
  r=$(check_tree "$MNT" "$IMAGES/blobdev.manifest") || fail "meta1 over blobdev: $r"
  r=$(check_tree "$MNT.2" "$IMAGES/blobdev.manifest") || fail "meta2 over blobdev: $r"
  umount "$MNT" || fail "umount meta1"
  umount "$MNT.2" || fail "umount meta2"
  opens=$(grep -c "opened blob 'blobdev'" "$SC_DIR/daemon.log")
  fact volumes "blobdev OPENed $opens time(s) for two mounts without a domain"
  [ "$opens" -ge 1 ] || fail "the daemon never served the blob device"

  mount_retry meta1 "$MNT" "domain_id=lbdom,device=blobdev"
  mount_retry meta2 "$MNT.2" "domain_id=lbdom,device=blobdev"
  r=$(check_tree "$MNT" "$IMAGES/blobdev.manifest") || fail "meta1 in a domain: $r"
  r=$(check_tree "$MNT.2" "$IMAGES/blobdev.manifest") || fail "meta2 in a domain: $r"
  umount "$MNT" || fail "umount meta1 (domain)"
  umount "$MNT.2" || fail "umount meta2 (domain)"
  fact domain "blobdev OPENed $(($(grep -c "opened blob 'blobdev'" "$SC_DIR/daemon.log") - opens)) time(s) for two mounts in one domain"
  stop_daemon
  [ "$DAEMON_RC" = 0 ] || fail "daemon exit status $DAEMON_RC after SIGTERM"
}
