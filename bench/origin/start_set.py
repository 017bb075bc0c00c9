#!/usr/bin/env python3
"""Records a program start and turns it into the byte ranges of an EROFS image it reads.

  start_set.py record --tree TREE --trace TRACE --resident JSON -- PROGRAM ARGS...
  start_set.py ranges --trace TRACE --resident JSON --image IMAGE --ranges OUT [--summary J]

record: drops TREE's files from the page cache (fsync + POSIX_FADV_DONTNEED: only this
tree's pages, never a global drop), runs PROGRAM chrooted in TREE under
`strace -f -e trace=openat,open,execve`, then asks mincore() which pages of each opened
file are resident: what the program touched (reads, mapped pages it faulted in) plus the
page cache's readahead around them, as a kernel reading the EROFS image would also ask.

ranges: every path opened successfully (files and directories, in first-open order)
becomes, with dump.erofs: the 4 KiB block holding its inode, then its resident pages mapped
through the file's extents to image offsets (directories: all their data). The superblock
block comes first (the mount). OUT gets "offset length" lines in that order, duplicates
dropped.
"""
import ctypes
import ctypes.util
import mmap
import os
import sys
import argparse
import json
import re
import subprocess

EXTENT_RE = r"\d+:\s+(\d+)\.\.\s*(\d+) \|\s*\d+ :\s+(\d+)\.\.\s*\d+ \|\s*\d+"
OPEN_RE = re.compile(r'(?:openat\([^,]+, |open\(|execve\()"([^"]+)"[^=]*= (\d+|0x[0-9a-f]+)')


def dump(image, args):
    return subprocess.run(["dump.erofs", *args, image], capture_output=True, text=True).stdout


def opened_paths(trace):
    paths = []
    for line in open(trace):
        m = OPEN_RE.search(line)
        if not m or "ENOENT" in line:
            continue
        if m.group(1) not in paths:
            paths.append(m.group(1))
    return paths


def resident_runs(path):
    """[(offset, length)] of the file's pages in the page cache."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = os.path.getsize(path)
    if size == 0:
        return []
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            return [(0, size)]
        pages = (size + 4095) // 4096
        vec = ctypes.create_string_buffer(pages)
        libc.mincore(addr, size, vec)
        libc.munmap(addr, size)
    finally:
        os.close(fd)
    runs, start = [], None
    for i in range(pages + 1):
        on = i < pages and vec.raw[i] & 1
        if on and start is None:
            start = i
        elif not on and start is not None:
            runs.append((start * 4096, min(i * 4096, size) - start * 4096))
            start = None
    return runs


def record(a, program):
    os.sync()
    for root, _, files in os.walk(a.tree):
        for name in files:
            p = os.path.join(root, name)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            fd = os.open(p, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat,open,execve", "-o", a.trace,
                    "chroot", a.tree] + program, check=True)
    resident = {}
    for path in opened_paths(a.trace):
        full = os.path.join(a.tree, path.lstrip("/"))
        if os.path.isfile(full):
            resident[path] = resident_runs(full)
    json.dump(resident, open(a.resident, "w"))


def overlap(runs, lo, hi):
    for off, length in runs:
        a, b = max(off, lo), min(off + length, hi)
        if a < b:
            yield a, b


def ranges(a):
    resident = json.load(open(a.resident))
    meta = re.search(r"meta_blkaddr:\s*(\d+)", dump(a.image, ["-s"]))
    meta_blkaddr = int(meta.group(1)) if meta else 0
    out, seen, files, data_bytes = [(0, 4096)], {(0, 4096)}, 0, 0
    for path in opened_paths(a.trace):
        info = dump(a.image, ["--path=" + path, "-e"])
        nid = re.search(r"NID: (\d+)", info)
        if not nid:
            continue  # not in the image (/proc, /dev, ...)
        files += 1
        inode_block = (meta_blkaddr * 4096 + int(nid.group(1)) * 32) // 4096 * 4096
        wanted = [(inode_block, 4096)]
        runs = resident.get(path)  # None: a directory, read whole
        for m in re.finditer(EXTENT_RE, info):
            lo, hi, phys = int(m.group(1)), int(m.group(2)), int(m.group(3))
            pieces = [(lo, hi)] if runs is None else list(overlap(runs, lo, hi))
            for x, y in pieces:
                wanted.append((phys + x - lo, y - x))
                data_bytes += y - x
        for r in wanted:
            if r not in seen and r[1] > 0:
                seen.add(r)
                out.append(r)
    with open(a.ranges, "w") as f:
        for off, length in out:
            f.write(f"{off} {length}\n")
    if a.summary:
        json.dump({"files_in_image": files, "ranges": len(out), "file_data_bytes": data_bytes,
                   "range_bytes": sum(r[1] for r in out)}, open(a.summary, "w"), indent=1)


def main():
    argv = sys.argv[1:]
    program = []
    if "--" in argv:
        program = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    p = argparse.ArgumentParser()
    p.add_argument("verb", choices=["record", "ranges"])
    p.add_argument("--trace", required=True)
    p.add_argument("--tree")
    p.add_argument("--resident", required=True)
    p.add_argument("--image")
    p.add_argument("--ranges")
    p.add_argument("--summary")
    a = p.parse_args(argv)
    if a.verb == "record":
        record(a, program)
    else:
        ranges(a)


if __name__ == "__main__":
    main()
