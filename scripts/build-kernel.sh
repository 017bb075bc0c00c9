#!/usr/bin/env bash
# Builds (once) the minimal x86_64 bzImage the VM suite boots, from Debian's
# linux-source-6.12 package, and prints its path on stdout.
#
# The image is cached outside the repo, keyed by the source package version and the
# hash of tests/e2e/kernel.config:
#   ${LAZYBLOB_CACHE_DIR:-/var/cache/lazyblob}/kernel/<version>-<hash12>/bzImage
# so a fresh clone on the same machine reuses it and a fresh machine pays one build.
# Steps: make tinyconfig, merge the fragment, make olddefconfig, check that every
# option of the fragment survived (fail naming the missing ones), make bzImage.
#
# Usage: scripts/build-kernel.sh [--force]   (all logs go to stderr)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FRAGMENT="$ROOT/tests/e2e/kernel.config"
SRC_TARBALL=/usr/src/linux-source-6.12.tar.xz
SRC_PKG=linux-source-6.12
CACHE_DIR="${LAZYBLOB_CACHE_DIR:-/var/cache/lazyblob}"
JOBS="${LAZYBLOB_KERNEL_JOBS:-$(nproc)}"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

log() { echo "build-kernel: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ -f "$FRAGMENT" ]] || die "missing fragment $FRAGMENT"
[[ -f "$SRC_TARBALL" ]] || die "missing $SRC_TARBALL (scripts/install-deps.sh installs $SRC_PKG)"

version=$(dpkg-query -W -f='${Version}' "$SRC_PKG" 2>/dev/null || true)
[[ -n "$version" ]] || version="unknown-$(stat -c %s-%Y "$SRC_TARBALL")"
frag_hash=$(sha256sum "$FRAGMENT" | cut -c1-12)
key="${version//[^A-Za-z0-9.+_-]/_}-$frag_hash"
out_dir="$CACHE_DIR/kernel/$key"
image="$out_dir/bzImage"

mkdir -p "$out_dir"
# One builder at a time per key; a second caller waits and then reuses the image.
exec 9>"$out_dir/.lock"
flock 9

if [[ -s "$image" && $FORCE -eq 0 ]]; then
  log "cached: $image"
  echo "$image"
  exit 0
fi

work="$out_dir/src"
rm -rf "$work"
mkdir -p "$work"
log "extracting $SRC_TARBALL (version $version) into $work"
tar -C "$work" --strip-components=1 -xJf "$SRC_TARBALL"

start=$(date +%s)
cd "$work"
log "make tinyconfig"
make -s tinyconfig >&2
log "merging $FRAGMENT"
KCONFIG_CONFIG=.config scripts/kconfig/merge_config.sh -m .config "$FRAGMENT" >&2
make -s olddefconfig >&2

# Every line of the fragment must be in the final config, verbatim.
missing=()
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*) grep -qxF "$line" .config || missing+=("$line (have: $(grep -E "^(# )?${line%%=*}[= ]" .config || echo absent))") ;;
    "# CONFIG_"*" is not set")
      opt=${line#\# }
      opt=${opt%% *}
      grep -qE "^$opt=" .config && missing+=("$line (have: $(grep -E "^$opt=" .config))") ;;
  esac
done <"$FRAGMENT"
if ((${#missing[@]})); then
  for m in "${missing[@]}"; do log "option did not survive olddefconfig: $m"; done
  die "${#missing[@]} option(s) of $FRAGMENT missing after olddefconfig (dependencies?)"
fi
log "all $(grep -c '^CONFIG_' "$FRAGMENT") fragment options present"

log "make -j$JOBS bzImage"
make -s -j"$JOBS" bzImage >&2
cp arch/x86/boot/bzImage "$image.tmp"
cp .config "$out_dir/config"
mv "$image.tmp" "$image"
cd "$out_dir"
[[ "${LAZYBLOB_KEEP_KERNEL_SRC:-0}" == 1 ]] || rm -rf "$work"
log "built $image in $(($(date +%s) - start))s ($(stat -c %s "$image") bytes)"
echo "$image"
