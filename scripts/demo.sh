#!/usr/bin/env bash
# The README's main job, end to end on a fresh Debian 12 machine (as root or with sudo):
# install the dependencies, build `lazyblob`, make two similar EROFS images from a
# generated tree, import both into a fresh chunk store (the second one mostly dedups
# against the first), then ls, stat, verify, and export each blob and compare it with
# its source image byte for byte. Then the daemon at work: a real Linux 6.12 kernel
# (built once from Debian's linux-source-6.12 and cached) boots under qemu, and lazyblobd
# serves EROFS mounts to it from the store through /dev/cachefiles (tests/e2e).
#
# Usage: scripts/demo.sh            (build dir: the "default" CMake preset's)
# Env:   LAZYBLOB_BIN=path          use this lazyblob binary, skip install and build
#        KEEP=1                     keep the temp directory (store, images) for a look
#        DEMO_VM=0                  skip the VM part (the kernel build costs minutes once)
# Exits non-zero on the first failing step.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STEP=0
step() {
  STEP=$((STEP + 1))
  printf '\n\033[1m==> [%d] %s\033[0m\n' "$STEP" "$*"
}
run() {
  printf '$ %s\n' "$*" >&2
  "$@"
}
die() {
  printf 'demo: FAILED: %s\n' "$*" >&2
  exit 1
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/lazyblob-demo.XXXXXX")"
cleanup() {
  if [[ "${KEEP:-0}" == 1 ]]; then
    echo "demo: kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'die "step [$STEP] failed (line $LINENO)"' ERR

# --- 1. dependencies and build ------------------------------------------------------
if [[ -n "${LAZYBLOB_BIN:-}" ]]; then
  step "Using the prebuilt $LAZYBLOB_BIN (LAZYBLOB_BIN set: no install, no build)"
  [[ -x "$LAZYBLOB_BIN" ]] || die "$LAZYBLOB_BIN is not executable"
  LB="$LAZYBLOB_BIN"
else
  step "Installing dependencies (scripts/install-deps.sh)"
  run "$ROOT/scripts/install-deps.sh"

  step "Configuring and building lazyblob and lazyblobd (cmake --preset default, ninja)"
  BUILD_DIR="$(python3 -c '
import json, sys
presets = json.load(open(sys.argv[1]))["configurePresets"]
p = next(p for p in presets if p["name"] == "default")
print(p["binaryDir"].replace("${sourceDir}", sys.argv[2]))' "$ROOT/CMakePresets.json" "$ROOT")"
  (cd "$ROOT" && run cmake --preset default -DLAZYBLOB_BUILD_BENCH=OFF >/dev/null)
  run ninja -C "$BUILD_DIR" -j "$(nproc)" lazyblob lazyblobd
  LB="$BUILD_DIR/tools/lazyblob"
  [[ -x "$LB" ]] || die "build produced no $LB"
fi
command -v mkfs.erofs >/dev/null || die "mkfs.erofs not found (apt-get install erofs-utils)"

STORE="$WORK/store"
lb() { run "$LB" --store "$STORE" "$@"; }

# --- 2. two similar EROFS images ----------------------------------------------------
step "Generating a sample tree and two EROFS images (v2 = v1 with a few files changed)"
TREE="$WORK/tree"
python3 - "$TREE" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
words = "lazy blob chunk store erofs cache kernel daemon pack index zstd dedup".split()
for d in range(8):
    os.makedirs(f"{root}/usr/lib/pkg{d}", exist_ok=True)
    os.makedirs(f"{root}/usr/share/doc/pkg{d}", exist_ok=True)
    # a "binary": incompressible, 200-900 KiB
    with open(f"{root}/usr/lib/pkg{d}/lib{d}.so", "wb") as f:
        f.write(rng.randbytes(rng.randint(200, 900) * 1024))
    # docs: compressible text
    with open(f"{root}/usr/share/doc/pkg{d}/README", "w") as f:
        for i in range(rng.randint(2000, 6000)):
            f.write(" ".join(rng.choice(words) for _ in range(12)) + f" {i}\n")
os.makedirs(f"{root}/etc", exist_ok=True)
with open(f"{root}/etc/os-release", "w") as f:
    f.write('NAME="lazyblob demo"\nVERSION="1"\n')
PY
IMG1="$WORK/demo-v1.erofs"
IMG2="$WORK/demo-v2.erofs"
run mkfs.erofs -T0 --all-root "$IMG1" "$TREE" >/dev/null
# v2: one library rebuilt, one doc appended to, one new file.
python3 - "$TREE" <<'PY'
import random, sys
root = sys.argv[1]
rng = random.Random(7)
with open(f"{root}/usr/lib/pkg3/lib3.so", "wb") as f:
    f.write(rng.randbytes(300 * 1024))
with open(f"{root}/usr/share/doc/pkg5/README", "a") as f:
    f.write("changelog: v2 fixes the frobnicator\n" * 50)
with open(f"{root}/etc/os-release", "w") as f:
    f.write('NAME="lazyblob demo"\nVERSION="2"\n')
with open(f"{root}/usr/lib/pkg0/new-plugin.so", "wb") as f:
    f.write(rng.randbytes(64 * 1024))
PY
run mkfs.erofs -T0 --all-root "$IMG2" "$TREE" >/dev/null
ls -l "$IMG1" "$IMG2"

# --- 3. import ----------------------------------------------------------------------
step "Importing demo-v1 into a new store at $STORE"
lb import "$IMG1" --id demo-v1

step "Importing demo-v2: most of its chunks are already in the store"
lb import "$IMG2" --id demo-v2 --json | tee "$WORK/v2.json"
python3 - "$WORK/v2.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
new, total = r["new_chunks"], r["chunks"]
print(f"demo-v2: {total - new} of {total} chunks deduplicated against demo-v1")
if not 0 < new < total:
    sys.exit(f"expected some but not all chunks to be new, got {new}/{total}")
PY

# --- 4. inspect ---------------------------------------------------------------------
step "Listing the blobs"
lb ls

step "Store totals (dedup and compression)"
lb stat
lb stat --prometheus | grep -v '^#'

step "Verifying every chunk"
lb verify

# --- 5. export and compare ----------------------------------------------------------
step "Exporting both blobs and comparing them with the source images"
lb export demo-v1 "$WORK/v1.out"
run cmp "$IMG1" "$WORK/v1.out"
"$LB" --store "$STORE" export demo-v2 - | run cmp "$IMG2" -
echo "both exports are byte-identical to their images"

# --- 6. the daemon serving a real kernel ----------------------------------------------
if [[ -z "${LAZYBLOB_BIN:-}" && "${DEMO_VM:-1}" != 0 ]]; then
  step "lazyblobd serving EROFS mounts to a real Linux 6.12 kernel under qemu (tests/e2e)"
  echo "import, mount -t erofs -o fsid=..., read every file and compare; two images sharing"
  echo "chunks; kill -9 of the worker mid-read (restore); metrics scraped inside the VM"
  run "$ROOT/scripts/vm-test.sh" --build-dir "$BUILD_DIR" \
    --only 'probe-mount|daemon-mount|daemon-shared-images|daemon-kill-worker|daemon-metrics'
fi

printf '\n\033[1mdemo: OK\033[0m (%d steps)\n' "$STEP"
