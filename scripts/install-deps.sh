#!/usr/bin/env bash
# Installs every Debian 12 package lazyblob needs to build, test, benchmark and run its
# VM suite. Idempotent: a machine that already has them pays one dpkg query.
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config git clang clang-format libclang-rt-14-dev
  libtbb-dev librocksdb-dev libzstd-dev libxxhash-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev libspdlog-dev libfmt-dev
  libssl-dev libsystemd-dev nlohmann-json3-dev libtomlplusplus-dev libcurl4-openssl-dev
  libcivetweb-dev python3
)
# Everything the README's test command runs, benchmark smoke runs included (their reports
# plot with matplotlib).
TEST_PKGS=(
  erofs-utils e2fsprogs util-linux cpio busybox-static qemu-system-x86 prometheus curl
  python3 xz-utils python3-matplotlib docker-registry apache2-utils openssl
  # systemd-analyze (verify of the installed unit) and man (the generated man pages).
  systemd man-db
  strace python3.11  # bench/origin records a python3.11 start (the smoke run too)
)
KERNEL_PKGS=(linux-source-6.12 bc flex bison libelf-dev libssl-dev dwarves)
# Only the full benchmarks (bench/run.sh without --smoke) compare against these.
BENCH_PKGS=(casync borgbackup)

want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${KERNEL_PKGS[@]}")
[[ "${1:-}" == "--with-bench" ]] && want+=("${BENCH_PKGS[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
