#!/usr/bin/env bash
# Builds the import-benchmark corpus: the same package set from Debian bookworm and
# trixie, downloaded with apt-get (private apt config, the system's sources are not
# touched), unpacked with dpkg-deb -x into one tree per release and built into an
# uncompressed EROFS image with 4 KiB blocks. Everything is cached under
# ${LAZYBLOB_CACHE_DIR:-/var/cache/lazyblob}/bench-corpus/ so reruns reuse it.
#
# usage: corpus.sh [--quick]   prints the two image paths (bookworm first), one a line.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
CACHE="${LAZYBLOB_CACHE_DIR:-/var/cache/lazyblob}/bench-corpus"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
MIRROR="${LAZYBLOB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SET=full
[[ $QUICK == 1 ]] && SET=quick

log() { echo "corpus: $*" >&2; }

# Package names for release column $1 (1 = bookworm, 2 = trixie) of packages.txt.
package_names() {
  local col="$1"
  grep -v '^\s*#' "$HERE/packages.txt" | grep -v '^\s*$' | while read -r a b c; do
    local tr="$a" quick=0
    if [[ "${b:-}" == quick ]]; then quick=1; elif [[ -n "${b:-}" ]]; then tr="$b"; fi
    [[ "${c:-}" == quick ]] && quick=1
    if [[ $QUICK == 1 && $quick == 0 ]]; then continue; fi
    if [[ $col == 1 ]]; then echo "$a"; else echo "$tr"; fi
  done
}

# apt-get with a private configuration rooted at $1 (sources.list, lists, archives).
apt_private() {
  local dir="$1"; shift
  apt-get -q \
    -o Dir::Etc::SourceList="$dir/sources.list" \
    -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$dir/lists" \
    -o Dir::State::status="$dir/status" \
    -o Dir::Cache="$dir/cache" \
    -o Dir::Cache::Archives="$dir/archives" \
    -o Debug::NoLocking=1 \
    -o APT::Get::List-Cleanup=0 \
    -o APT::Sandbox::User=root \
    "$@"
}

# Downloads the .debs of release $1 (column $2) into $CACHE/$1/archives.
fetch_release() {
  local rel="$1" col="$2" dir="$CACHE/$1"
  mkdir -p "$dir/lists/partial" "$dir/cache" "$dir/archives/partial" "$dir/debs"
  # An empty dpkg status: candidates come from $rel alone, not from what is installed.
  : > "$dir/status"
  echo "deb [signed-by=$KEYRING] $MIRROR $rel main" > "$dir/sources.list"
  if ! ls "$dir/lists/"*_InRelease >/dev/null 2>&1; then
    log "apt-get update for $rel"
    apt_private "$dir" update >&2
  fi
  local pkgs=() p
  mapfile -t pkgs < <(package_names "$col")
  local missing=()
  for p in "${pkgs[@]}"; do
    compgen -G "$dir/debs/${p}_*.deb" >/dev/null || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "downloading ${#missing[@]} packages for $rel"
    (cd "$dir/debs" && apt_private "$dir" download "${missing[@]}" >&2)
  fi
}

# Unpacks the selected .debs of release $1 into a tree and builds the EROFS image.
build_image() {
  local rel="$1" col="$2" dir="$CACHE/$1"
  local img="$CACHE/$rel-$SET.erofs"
  if [[ -s "$img" ]]; then echo "$img"; return; fi
  local tree="$CACHE/tree-$rel-$SET"
  rm -rf "$tree" && mkdir -p "$tree"
  local p deb
  while read -r p; do
    for deb in "$dir/debs/${p}"_*.deb; do dpkg-deb -x "$deb" "$tree"; done
  done < <(package_names "$col")
  log "mkfs.erofs $img ($(du -sh "$tree" | cut -f1) tree)"
  # Uncompressed (no -z); erofs-utils 1.5 has no -b, blocks are the 4 KiB page size; fixed timestamps/uuid so reruns are comparable.
  mkfs.erofs --quiet -T0 --all-root -U 00000000-0000-0000-0000-000000000000 "$img.tmp" "$tree" >&2
  mv "$img.tmp" "$img"
  rm -rf "$tree"
  echo "$img"
}

fetch_release bookworm 1
fetch_release trixie 2
build_image bookworm 1
build_image trixie 2
