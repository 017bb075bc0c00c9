#!/usr/bin/env python3
"""Chunk statistics of casync blob indexes (.caibx), as JSON on stdout.

usage: caibx_stats.py INDEX.caibx...

Layout (casync src/caformat.h): a CaFormatIndex header (6 x u64: size=48, type,
feature flags, chunk size min/avg/max), then a CaFormatTable header (2 x u64: size=~0,
type), then 40-byte items {u64 end offset, 32-byte chunk id} and a 40-byte tail whose
first u64 is 0. Prints logical bytes, chunk counts and the unique (deduplicated,
uncompressed) bytes over all the given indexes together.
"""
import json
import struct
import sys

INDEX_TYPE = 0x96824D9C7B129FF9
TABLE_TYPE = 0xE75B9E112F17417D


def chunks(path):
    with open(path, "rb") as f:
        data = f.read()
    size, typ = struct.unpack_from("<QQ", data, 0)
    if size != 48 or typ != INDEX_TYPE:
        raise SystemExit(f"{path}: not a casync index")
    _, ttyp = struct.unpack_from("<QQ", data, 48)
    if ttyp != TABLE_TYPE:
        raise SystemExit(f"{path}: no chunk table")
    pos, prev = 64, 0
    while pos + 40 <= len(data):
        end, = struct.unpack_from("<Q", data, pos)
        if end == 0:
            break
        yield data[pos + 8:pos + 40], end - prev
        prev = end
        pos += 40


def main():
    logical, total, unique = 0, 0, {}
    for path in sys.argv[1:]:
        for cid, n in chunks(path):
            logical += n
            total += 1
            unique[cid] = n
    print(json.dumps(dict(logical_bytes=logical, chunks=total, unique_chunks=len(unique),
                          unique_bytes=sum(unique.values()))))


if __name__ == "__main__":
    main()
