#!/usr/bin/env python3
"""Writes a deterministic file tree that looks like an unpacked package set, for benchmark
images that must not depend on what the host happens to have installed.

usage: make_tree.py --mib N [--seed S] OUT_DIR

Same arguments, same bytes (Python's `random` is seeded and version-stable for
getrandbits/choice). What it writes, by bytes:
  - ~55% text: "source files", "docs" and "configs" from a fixed vocabulary, so they
    compress about 3-4x with zstd, like real text;
  - ~30% "binaries": records of a few repeated structures with varying fields (about 2x);
  - ~15% incompressible bytes (already-compressed payloads);
and ~5% of the files are copies of earlier ones (the duplicates package trees carry).
File sizes follow a heavy-tailed spread from 64 bytes to 8 MiB, 20 to 60
files a directory, directories three levels deep.
"""
import argparse
import os
import random

WORDS = (
    "the of and to in is that for it as with was on be by this are from or have an "
    "not which but at can all if one more will their there been has when who would "
    "buffer kernel page block inode file read write open close size offset length "
    "chunk store index cache map error status return value count table entry list "
    "struct const static void int unsigned char long double float bool true false "
    "include define ifdef endif while for switch case break continue default goto "
    "license copyright permission software warranty merchantability fitness purpose"
).split()
PUNCT = [" ", " ", " ", " ", ", ", ". ", ";\n", "\n", "(", ") ", " = ", "{\n", "}\n"]


def text_bytes(rng, n):
    out, size = [], 0
    while size < n:
        w = rng.choice(WORDS) + rng.choice(PUNCT)
        out.append(w)
        size += len(w)
    return "".join(out).encode()[:n]


def binary_bytes(rng, n):
    shapes = [rng.randbytes(rng.randint(8, 48)) for _ in range(6)]
    out, size = bytearray(), 0
    while size < n:
        rec = bytearray(rng.choice(shapes))
        rec[rng.randrange(len(rec))] = rng.getrandbits(8)
        rec += rng.getrandbits(32).to_bytes(4, "little")
        out += rec
        size += len(rec)
    return bytes(out[:n])


def file_size(rng):
    # Log-uniform between 64 B and 512 KiB, plus 2% of 1-8 MiB: many small files, a few
    # big ones (a Debian package tree averages a few tens of KiB a file).
    if rng.random() < 0.02:
        return int(2 ** rng.uniform(20, 23))
    return int(2 ** rng.uniform(6, 19))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=float, required=True, help="total bytes of file data, MiB")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("out")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    total, budget = 0, int(a.mib * (1 << 20))
    written = []  # (path, bytes) kept for duplicates, bounded
    d = 0
    while total < budget:
        dirpath = os.path.join(a.out, f"pkg{d // 64:03d}", f"lib{d // 8 % 8}", f"d{d % 8}")
        os.makedirs(dirpath, exist_ok=True)
        for f in range(rng.randint(20, 60)):
            if total >= budget:
                break
            kind = rng.random()
            if written and kind < 0.05:
                data = rng.choice(written)
            else:
                n = min(file_size(rng), budget - total)
                r = rng.random()
                if r < 0.55:
                    data = text_bytes(rng, n)
                elif r < 0.85:
                    data = binary_bytes(rng, n)
                else:
                    data = rng.randbytes(n)
                if len(written) < 64 and n < (256 << 10):
                    written.append(data)
            with open(os.path.join(dirpath, f"f{f:02d}.dat"), "wb") as fh:
                fh.write(data)
            total += len(data)
        d += 1


if __name__ == "__main__":
    main()
