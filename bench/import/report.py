#!/usr/bin/env python3
"""Aggregates the import benchmark's run records into import.json and import.md.

Each record (one line of JSON from tools.sh) is one tool importing both images into a
fresh store. Per tool we report medians over the repetitions of: wall seconds, MB/s
(logical bytes / wall seconds, MB = 10^6 bytes), stored bytes (du -sb of the store, and
the sum of its regular files without directory entries) and the dedup ratio (logical
bytes / unique uncompressed chunk bytes). Ratios lazyblob/casync and lazyblob/borg are
of those medians. Targets are reported, not asserted.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import statistics
import subprocess


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def package_files(packages_txt, cache_dir, quick):
    """The .deb file names used for each release (names carry the versions)."""
    out = {"bookworm": [], "trixie": []}
    with open(packages_txt) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            cols = line.split()
            is_quick = cols[-1] == "quick"
            if is_quick:
                cols = cols[:-1]
            if quick and not is_quick:
                continue
            names = {"bookworm": cols[0], "trixie": cols[1] if len(cols) > 1 else cols[0]}
            for rel, name in names.items():
                hits = glob.glob(os.path.join(cache_dir, rel, "debs", f"{name}_*.deb"))
                out[rel] += sorted(os.path.basename(h) for h in hits)
    return out


def summarize(records):
    tools = {}
    for r in records:
        t = tools.setdefault(r["tool"], {"runs": [], "errors": []})
        if "error" in r:
            t["errors"].append(r["error"])
        else:
            t["runs"].append(r)
    summary = {}
    for name, t in tools.items():
        runs = t["runs"]
        s = {"reps_ok": len(runs), "errors": t["errors"]}
        if runs:
            s.update(
                logical_bytes=runs[0]["logical_bytes"],
                unique_bytes=runs[0]["unique_bytes"],
                unique_chunks=runs[0].get("unique_chunks"),
                seconds_median=median([r["seconds"] for r in runs]),
                seconds_all=[round(r["seconds"], 3) for r in runs],
                mb_per_s_median=median([r["logical_bytes"] / r["seconds"] / 1e6 for r in runs]),
                cpu_seconds_median=median([r.get("cpu_seconds") for r in runs]),
                mb_per_cpu_s_median=median([r["logical_bytes"] / r["cpu_seconds"] / 1e6
                                            for r in runs if r.get("cpu_seconds")]),
                store_du_bytes=median([r["store_du_bytes"] for r in runs]),
                store_file_bytes=median([r["store_file_bytes"] for r in runs]),
                compressed_unique_bytes=median([r.get("compressed_unique_bytes") for r in runs]),
                dedup_ratio=runs[0]["logical_bytes"] / runs[0]["unique_bytes"],
            )
            extra = {k: v for k, v in runs[-1].items()
                     if k not in s and k not in ("tool", "seconds", "rep")}
            s["last_run_details"] = extra
        summary[name] = s
    return summary


def ratio(summary, a, b, key):
    try:
        x, y = summary[a][key], summary[b][key]
    except KeyError:
        return None
    return x / y if x is not None and y else None


def fmt_bytes(n):
    return "n/a" if n is None else f"{n / 1e6:,.1f} MB ({int(n):,})"


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def markdown(result):
    s = result["tools"]
    lines = [
        "# Import + dedup benchmark" + (" (quick smoke run)" if result["quick"] else ""),
        "",
        f"Generated {result['generated']} by `bench/import/run.sh"
        + (" --quick" if result["quick"] else "") + "` on "
        f"{result['machine']['cpus']} CPUs ({result['machine']['cpu_model']}), "
        f"{result['reps']} repetition(s) per tool into fresh stores; medians.",
        "",
        "Corpus: the same Debian package set from bookworm and trixie "
        f"({len(result['corpus']['packages']['bookworm'])} / "
        f"{len(result['corpus']['packages']['trixie'])} .debs), unpacked with dpkg-deb -x and "
        "built into uncompressed EROFS images (mkfs.erofs 1.5, 4 KiB blocks): "
        + ", ".join(f"{i['name']} {i['bytes'] / 1e6:,.1f} MB" for i in result["corpus"]["images"])
        + f"; {result['corpus']['logical_bytes'] / 1e6:,.1f} MB logical in all, both imported "
        "into one store per tool.",
        "",
        "All tools: content-defined chunks 16 KiB min / 64 KiB avg / 256 KiB max, zstd level 3. "
        "casync: `casync make --chunk-size=16384:65536:262144` (stored = chunk store + .caibx "
        "indexes); borg: `borg create --chunker-params buzhash,14,18,16,4095 --compression "
        "zstd,3`, `borg init -e none` (stored = repo; client cache not counted); lazyblob: "
        "`lazyblob import --chunker cdc --avg-chunk 64K` (stored = whole store dir: packs + "
        "RocksDB index).",
        "",
        "| tool | stored bytes (du -sb) | stored bytes (files only) | compressed chunk bytes "
        "| overhead (du - chunks) | dedup ratio | import MB/s | wall s (all reps) | CPU s "
        "| MB per CPU s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in ("lazyblob", "casync", "borg"):
        if name not in s:
            continue
        t = s[name]
        if not t["reps_ok"]:
            lines.append(f"| {name} | failed: {'; '.join(t['errors'])[:200]} | | | | | | | | |")
            continue
        overhead = (None if t["compressed_unique_bytes"] is None
                    else t["store_du_bytes"] - t["compressed_unique_bytes"])
        lines.append(
            f"| {name} | {fmt_bytes(t['store_du_bytes'])} | {fmt_bytes(t['store_file_bytes'])} "
            f"| {fmt_bytes(t['compressed_unique_bytes'])} | {fmt_bytes(overhead)} "
            f"| {t['dedup_ratio']:.3f} "
            f"| {t['mb_per_s_median']:.1f} | {', '.join(f'{x:.2f}' for x in t['seconds_all'])} "
            f"| {fmt(t['cpu_seconds_median'], '.2f')} | {fmt(t['mb_per_cpu_s_median'], '.1f')} |")
    lines += ["", "| ratio | stored (du -sb) | stored (files) | MB/s | MB per CPU s |",
              "| --- | --- | --- | --- | --- |"]
    for other in ("casync", "borg"):
        r = result["ratios"][f"lazyblob/{other}"]
        lines.append(f"| lazyblob/{other} | {fmt(r['store_du_bytes'], '.3f')} "
                     f"| {fmt(r['store_file_bytes'], '.3f')} | {fmt(r['mb_per_s'], '.2f')} "
                     f"| {fmt(r['mb_per_cpu_s'], '.2f')} |")
    tg = result["targets"]
    lines += [
        "",
        "Targets (reported, not asserted): lazyblob stored bytes <= casync's: "
        f"{tg['stored_le_casync']}; lazyblob import MB/s >= 2x casync's: "
        f"{tg['throughput_ge_2x_casync']}.",
        "",
        "Notes: dedup ratio = logical bytes / unique uncompressed chunk bytes. du -sb counts "
        "directory entries too (casync's store has one directory per 4-hex-digit prefix). "
        "Compressed chunk bytes: casync = its .cacnk files, borg = unique_csize, lazyblob = "
        "stat's stored_bytes; overhead = du -sb minus that (indexes, RocksDB, pack/segment "
        "headers, directories). "
        "Images are read into the page cache before each run; times do not include a final "
        "sync. CPU s = user + system time of the tool's processes (all threads). The machine is "
        "shared and noisy: compare the ratios, not absolute MB/s.",
    ]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--images", nargs=2, required=True)
    ap.add_argument("--names", nargs=2, required=True)
    ap.add_argument("--reps", type=int, required=True)
    ap.add_argument("--corpus-dir", required=True)
    ap.add_argument("--quick", type=int, default=0)
    ap.add_argument("--packages", required=True)
    a = ap.parse_args()

    with open(a.records) as f:
        records = [json.loads(line) for line in f if line.strip()]
    summary = summarize(records)
    images = [{"name": n, "file": os.path.basename(p), "bytes": os.path.getsize(p)}
              for n, p in zip(a.names, a.images)]
    ratios = {}
    for other in ("casync", "borg"):
        ratios[f"lazyblob/{other}"] = {
            "store_du_bytes": ratio(summary, "lazyblob", other, "store_du_bytes"),
            "store_file_bytes": ratio(summary, "lazyblob", other, "store_file_bytes"),
            "mb_per_s": ratio(summary, "lazyblob", other, "mb_per_s_median"),
            "mb_per_cpu_s": ratio(summary, "lazyblob", other, "mb_per_cpu_s_median"),
        }
    rc = ratios["lazyblob/casync"]
    targets = {
        "stored_le_casync": None if rc["store_du_bytes"] is None else rc["store_du_bytes"] <= 1.0,
        "throughput_ge_2x_casync": None if rc["mb_per_s"] is None else rc["mb_per_s"] >= 2.0,
    }
    cpu_model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)),
                                 "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    result = {
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "quick": bool(a.quick),
        "reps": a.reps,
        "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model,
                    "kernel": platform.release()},
        "corpus": {"images": images, "logical_bytes": sum(i["bytes"] for i in images),
                   "packages": package_files(a.packages, a.corpus_dir, a.quick)},
        "tools": summary,
        "ratios": ratios,
        "targets": targets,
        "records": records,
    }
    with open(a.json, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    with open(a.md, "w") as f:
        f.write(markdown(result))


if __name__ == "__main__":
    main()
