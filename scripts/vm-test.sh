#!/usr/bin/env bash
# Runs the real-kernel VM suite (tests/e2e): builds or reuses the cached
# bzImage (scripts/build-kernel.sh), builds the initramfs with the probe and,
# when present, BUILD_DIR/tools/lazyblob{,d}, boots qemu (TCG, 2 CPUs, 2 GiB)
# with a fresh ext4 cache disk, and reports one line per scenario plus
# "N passed, N failed, N skipped". Exits non-zero on any failure, on a VM
# that did not finish (hard timeout) or when no scenario ran.
#
# Usage: scripts/vm-test.sh [--build-dir DIR] [--only REGEX] [--timeout SECONDS]
#                           [--kernel BZIMAGE] [--tools-dir DIR] [--verbose]
#                           [--out DIR] [--mem SIZE] [--extra-cpio FILE]
# --tools-dir: where lazyblob and lazyblobd are (default BUILD_DIR/tools).
# --out: output dir (default BUILD_DIR/e2e).  --mem: guest RAM (default 2G).
# --extra-cpio: a newc cpio appended to the initramfs (the kernel unpacks both; its
#   files win), e.g. bench/vm/run.sh's data and scenario.
# Outputs in the output dir: console.log, results.txt, facts.txt, guest-logs/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="${LAZYBLOB_BUILD_DIR:-$ROOT/build}"
ONLY=""
VM_TIMEOUT=480
KERNEL=""
VERBOSE=0
TOOLS=""
OUT=""
MEM=2G
EXTRA_CPIO=""
while (($#)); do
  case "$1" in
    --build-dir) BUILD=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --timeout) VM_TIMEOUT=$2; shift 2 ;;
    --kernel) KERNEL=$2; shift 2 ;;
    --tools-dir) TOOLS=$2; shift 2 ;;
    --verbose | -v) VERBOSE=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --mem) MEM=$2; shift 2 ;;
    --extra-cpio) EXTRA_CPIO=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "vm-test: unknown argument $1" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-$BUILD/e2e}"
TOOLS="${TOOLS:-$BUILD/tools}"
mkdir -p "$OUT"
t0=$(date +%s)

[[ -n "$KERNEL" ]] || KERNEL=$("$ROOT/scripts/build-kernel.sh")
[[ -s "$KERNEL" ]] || { echo "vm-test: no kernel image" >&2; exit 1; }

bins=()
for b in lazyblob lazyblobd; do
  if [[ -x "$TOOLS/$b" ]]; then bins+=("$TOOLS/$b"); else echo "vm-test: $TOOLS/$b absent: its scenarios will SKIP" >&2; fi
done
# The origin scenario runs a real registry inside the guest.
if command -v docker-registry >/dev/null; then
  bins+=("$(command -v docker-registry)")
else
  echo "vm-test: docker-registry absent: the origin scenario will SKIP" >&2
fi
"$ROOT/tests/e2e/build-initramfs.sh" "$OUT" "${bins[@]}"
INITRD="$OUT/initramfs.cpio"
if [[ -n "$EXTRA_CPIO" ]]; then
  [[ -s "$EXTRA_CPIO" ]] || { echo "vm-test: no cpio at $EXTRA_CPIO" >&2; exit 1; }
  INITRD="$OUT/initramfs+extra.cpio"
  cat "$OUT/initramfs.cpio" "$EXTRA_CPIO" >"$INITRD"
fi

# A fresh ext4 cache disk every run (cachefiles refuses tmpfs).
rm -f "$OUT/cache.img"
truncate -s 1G "$OUT/cache.img"
mkfs.ext4 -q -F -L lbcache "$OUT/cache.img"

append="console=ttyS0 loglevel=4 panic=-1 rdinit=/init"
[[ -n "$ONLY" ]] && append="$append e2e.only=$ONLY"
rm -f "$OUT/console.log"
echo "vm-test: booting $(basename "$(dirname "$KERNEL")") (timeout ${VM_TIMEOUT}s)" >&2
boot=$(date +%s)
set +e
timeout -s KILL "$VM_TIMEOUT" qemu-system-x86_64 \
  -machine pc -accel tcg -cpu max -m "$MEM" -smp 2 \
  -display none -monitor none -serial "file:$OUT/console.log" -no-reboot -net none \
  -kernel "$KERNEL" -initrd "$INITRD" -append "$append" \
  -drive "file=$OUT/cache.img,format=raw,if=virtio" </dev/null >"$OUT/qemu.out" 2>&1
qemu_rc=$?
set -e
vm_s=$(($(date +%s) - boot))

# Guest-side logs (probe/daemon logs, dmesg) from the ext4 disk.
rm -rf "$OUT/guest-logs" "$OUT/e2e-logs"
debugfs -R "rdump /e2e-logs $OUT" "$OUT/cache.img" >/dev/null 2>&1 || true
[[ -d "$OUT/e2e-logs" ]] && mv "$OUT/e2e-logs" "$OUT/guest-logs"

tr -d '\r' <"$OUT/console.log" | sed -n 's/.*@@E2E \(PASS\|FAIL\|SKIP\) /\1 /p' >"$OUT/results.txt"
tr -d '\r' <"$OUT/console.log" | sed -n 's/.*@@E2E FACT /FACT /p' >"$OUT/facts.txt"
cat "$OUT/results.txt"
if ((VERBOSE)); then
  sed 's/^/  /' "$OUT/facts.txt"
  tr -d '\r' <"$OUT/console.log" | sed -n 's/.*@@E2E LOG /  log: /p'
fi

passed=$(grep -c '^PASS ' "$OUT/results.txt" || true)
failed=$(grep -c '^FAIL ' "$OUT/results.txt" || true)
skipped=$(grep -c '^SKIP ' "$OUT/results.txt" || true)
status=0
if ! grep -q '@@E2E DONE' "$OUT/console.log"; then
  if ((qemu_rc == 137)); then why="VM killed after ${VM_TIMEOUT}s"; else why="VM ended without finishing (qemu exit $qemu_rc)"; fi
  echo "FAIL vm: $why; see $OUT/console.log"
  failed=$((failed + 1))
fi
((failed == 0)) || status=1
if ((passed + failed == 0)); then
  echo "FAIL vm: no scenario ran"
  status=1
fi
echo "$passed passed, $failed failed, $skipped skipped (VM ${vm_s}s, total $(($(date +%s) - t0))s; logs in $OUT)"
exit $status
