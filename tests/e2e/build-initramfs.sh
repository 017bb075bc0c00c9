#!/usr/bin/env bash
# Builds the e2e VM's initramfs (an uncompressed newc cpio) into OUT_DIR:
#   /bin/busybox (static; /init installs the applet links), /init,
#   /e2e/{run.sh,run-one.sh,lib.sh,scenarios/}, /e2e/images (make_images.py),
#   /e2e/bin/ondemand_probe (built here with gcc -static), and every BINARY
#   given, copied to /e2e/bin with its ldd closure and the dynamic loader at the
#   same paths as on the host.
# Usage: tests/e2e/build-initramfs.sh OUT_DIR [BINARY...]   -> OUT_DIR/initramfs.cpio
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$1
shift
ROOTFS="$OUT/rootfs"
mkdir -p "$OUT"

# Images: rebuilt only when make_images.py changes.
stamp=$(sha256sum "$HERE/make_images.py" | cut -c1-16)
if [[ "$(cat "$OUT/images/.stamp" 2>/dev/null)" != "$stamp" ]]; then
  rm -rf "$OUT/images"
  python3 "$HERE/make_images.py" "$OUT/images"
  echo "$stamp" >"$OUT/images/.stamp"
fi

# The probe daemon.
gcc -O2 -Wall -Wextra -Werror -static -o "$OUT/ondemand_probe" "$HERE/probe/ondemand_probe.c"

rm -rf "$ROOTFS"
mkdir -p "$ROOTFS"/{bin,sbin,dev,proc,sys,tmp,cache,mnt,e2e/bin,e2e/scenarios,e2e/images}
cp /bin/busybox "$ROOTFS/bin/busybox"
ln -s busybox "$ROOTFS/bin/sh"
cp "$HERE/guest/init" "$ROOTFS/init"
cp "$HERE/guest/run.sh" "$HERE/guest/run-one.sh" "$HERE/guest/lib.sh" "$ROOTFS/e2e/"
cp "$HERE"/scenarios/*.sh "$ROOTFS/e2e/scenarios/"
cp "$OUT"/images/*.erofs "$OUT"/images/*.manifest "$OUT"/images/*.env "$OUT"/images/*.ranges "$ROOTFS/e2e/images/"
cp "$OUT/ondemand_probe" "$ROOTFS/e2e/bin/"

# copy_at_same_path FILE: FILE (symlinks resolved) to the same path in the rootfs.
copy_at_same_path() {
  mkdir -p "$ROOTFS$(dirname "$1")"
  [[ -e "$ROOTFS$1" ]] || cp -L "$1" "$ROOTFS$1"
}

for bin in "$@"; do
  [[ -x "$bin" ]] || { echo "build-initramfs: not executable: $bin" >&2; exit 1; }
  cp -L "$bin" "$ROOTFS/e2e/bin/"
  if ldd "$bin" >/dev/null 2>&1; then
    # "libx.so => /path (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)".
    while read -r lib; do
      copy_at_same_path "$lib"
    done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
  fi
done

(cd "$ROOTFS" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) >"$OUT/initramfs.cpio"
echo "build-initramfs: $OUT/initramfs.cpio ($(du -k "$OUT/initramfs.cpio" | cut -f1) KiB, binaries: ${*:-none})" >&2
