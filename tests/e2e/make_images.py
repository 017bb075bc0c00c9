#!/usr/bin/env python3
"""Builds the EROFS test images of the VM suite into OUT_DIR (idempotent).

Deterministic content (seeded PRNG), fixed timestamps and UUID, so the same
script always yields the same images. For each image NAME it writes
NAME.erofs, NAME.manifest (sha256sum format, paths relative to the tree root)
and NAME.env (shell variables: NAME_SIZE=..., ...).

  tree  small tree: odd file sizes (0, 1, 1000, 4095, 4096, 4097, ...), nested
        dirs, a symlink.
  big   one 8 MiB file (readahead sizes, no-data behaviour).
  tail  the tree image (built with -Enoinline_data) trimmed after its last non-zero byte, so its size is NOT
        a multiple of 4 KiB (how the kernel wants the last partial block).
  tree2 the tree with one 300000-byte file rewritten and one file added: shares
        most content with tree (dedup across images).
  meta1, meta2, blobdev  the tree2 tree in nydus's layout (mkfs.erofs --blobdev
        --chunksize=65536): two metadata images (UUIDs differ) sharing one blob device.
  big.ranges  200 random byte ranges of big.bin (seeded): "OFFSET LENGTH SHA256" lines,
        every fourth one 4 KiB-aligned, for the random-read scenario.
"""
import hashlib
import os
import random
import shutil
import subprocess
import sys

UUID = "6c617a79-626c-6f62-2d65-326574657374"


def write_file(path, size, rng):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(rng.randbytes(size))


def manifest(root):
    lines = []
    for d, _, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            if os.path.islink(p):
                continue
            rel = os.path.relpath(p, root)
            with open(p, "rb") as f:
                h = hashlib.sha256(f.read()).hexdigest()
            lines.append(f"{h}  {rel}\n")
    lines.sort(key=lambda l: l.split("  ", 1)[1])
    return "".join(lines)


def mkfs(img, root, *extra):
    subprocess.run(["mkfs.erofs", "--quiet", *extra, "-T0", "-U" + UUID, "--all-root", img, root],
                   check=True)


def build_tree(root, seed):
    rng = random.Random(seed)
    sizes = [0, 1, 1000, 4095, 4096, 4097, 12345, 65543, 300000, 1048576 + 123]
    for i, s in enumerate(sizes):
        write_file(os.path.join(root, f"f{i:02d}_{s}.bin"), s, rng)
    write_file(os.path.join(root, "dir/sub/deep.txt"), 777, rng)
    write_file(os.path.join(root, "dir/other.bin"), 20000, rng)
    os.symlink("f01_1.bin", os.path.join(root, "link"))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    work = os.path.join(out, "trees")
    shutil.rmtree(work, ignore_errors=True)

    tree = os.path.join(work, "tree")
    build_tree(tree, 1)
    big = os.path.join(work, "big")
    write_file(os.path.join(big, "big.bin"), 8 << 20, random.Random(2))

    tree2 = os.path.join(work, "tree2")
    build_tree(tree2, 1)
    write_file(os.path.join(tree2, "f08_300000.bin"), 300000, random.Random(3))
    write_file(os.path.join(tree2, "dir/extra.bin"), 50000, random.Random(4))

    with open(os.path.join(big, "big.bin"), "rb") as f:
        big_data = f.read()
    rng = random.Random(5)
    with open(os.path.join(out, "big.ranges"), "w") as f:
        for i in range(200):
            if i % 4 == 0:
                off = rng.randrange(0, len(big_data) // 4096) * 4096
                length = rng.randint(1, 16) * 4096
            else:
                off = rng.randrange(0, len(big_data))
                length = rng.randint(1, 65536)
            length = min(length, len(big_data) - off)
            h = hashlib.sha256(big_data[off:off + length]).hexdigest()
            f.write(f"{off} {length} {h}\n")

    for name, root in (("tree", tree), ("big", big), ("tree2", tree2)):
        img = os.path.join(out, name + ".erofs")
        mkfs(img, root)
        with open(os.path.join(out, name + ".manifest"), "w") as f:
            f.write(manifest(root))

    # tail: the tree without inline tails (each file's last partial block is a
    # block of its own; the largest file's ends the image), cut after its last
    # non-zero byte.
    mkfs(os.path.join(out, "tail.full"), tree, "-Enoinline_data")
    data = open(os.path.join(out, "tail.full"), "rb").read()
    os.unlink(os.path.join(out, "tail.full"))
    end = len(data.rstrip(b"\0"))
    if end % 4096 == 0:
        end += 1  # keep one zero byte so the size is not block-aligned
    with open(os.path.join(out, "tail.erofs"), "wb") as f:
        f.write(data[:end])
    shutil.copy(os.path.join(out, "tree.manifest"), os.path.join(out, "tail.manifest"))

    # blobdev: nydus's layout, metadata images over a blob device. meta1 and meta2 differ
    # only in their UUID; both mkfs runs write the same blob device, so the two images
    # share one device (imported once, mounted with device=blobdev by both).
    bd = os.path.join(out, "blobdev.erofs")
    for i, uuid in ((1, UUID), (2, UUID[:-1] + "5")):
        blob = bd if i == 1 else os.path.join(work, "blobdev2")
        subprocess.run(["mkfs.erofs", "--quiet", "-T0", "-U" + uuid, "--all-root",
                        "--blobdev=" + blob, "--chunksize=65536",
                        os.path.join(out, f"meta{i}.erofs"), tree2], check=True)
    with open(bd, "rb") as a, open(os.path.join(work, "blobdev2"), "rb") as b:
        assert a.read() == b.read(), "the two blob devices differ"
    shutil.copy(os.path.join(out, "tree2.manifest"), os.path.join(out, "blobdev.manifest"))

    for name in ("tree", "big", "tail", "tree2"):
        size = os.path.getsize(os.path.join(out, name + ".erofs"))
        with open(os.path.join(out, name + ".env"), "w") as f:
            f.write(f"{name.upper()}_SIZE={size}\n")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
