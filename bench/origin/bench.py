#!/usr/bin/env python3
"""Runs the origin benchmark's modes (bench/origin/run.sh sets everything up) and writes
OUT.json, OUT.md and OUT.png. See run.sh for what is measured."""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

BUILD = os.environ["LAZYBLOB_BENCH_BUILD"]
LAZYBLOB = f"{BUILD}/tools/lazyblob"
LAZYBLOBD = f"{BUILD}/tools/lazyblobd"
ORIGIN_BENCH = f"{BUILD}/bench/origin_bench"
HERE = os.path.dirname(os.path.abspath(__file__))
TREES = {
    "corpus": "a Debian bookworm userland from Debian packages (bench/import/packages.txt: "
              "python3.11, perl, git, curl, systemd, binutils, ... and python's runtime "
              "libraries)",
    "host": "the host's python3.11 with its standard library and shared libraries only",
}
# Extra lazyblobd flags for every mode (tuning experiments), e.g. "--write-ahead 4M".
EXTRA = os.environ.get("ORIGIN_BENCH_DAEMON_ARGS", "").split()
# Extra lazyblobd flags for mode (d)'s recording node only.
RECORD_EXTRA = os.environ.get("ORIGIN_BENCH_RECORD_ARGS", "").split()
# Extra lazyblobd flags for mode (d)'s replaying node only.
REPLAY_EXTRA = os.environ.get("ORIGIN_BENCH_REPLAY_ARGS", "").split()
# A directory to keep each rep's recorded file in (rep<N>-<name>.trace), for study.
KEEP_RECORDS = os.environ.get("ORIGIN_BENCH_KEEP_RECORDS", "")
DAEMON = [LAZYBLOBD, "--threads", "8", "--log-level", "warn"] + EXTRA


def proxy_stats(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return {"requests": 0, "bytes_out": 0}


class Proxy:
    def __init__(self, work, upstream, rtt, mbit):
        self.stats = f"{work}/proxy-{rtt}-{mbit}.stats"
        port_file = f"{work}/proxy-{rtt}-{mbit}.port"
        self.p = subprocess.Popen([sys.executable, f"{HERE}/delay_proxy.py", "--upstream", upstream,
                                   "--rtt-ms", str(rtt), "--mbit", str(mbit), "--port-file",
                                   port_file, "--stats-file", self.stats])
        for _ in range(200):
            if os.path.exists(port_file) and open(port_file).read():
                break
            time.sleep(0.05)
        self.addr = "127.0.0.1:" + open(port_file).read()

    def counters(self):
        s = proxy_stats(self.stats)
        return s["requests"], s["bytes_out"]

    def close(self):
        self.p.terminate()
        self.p.wait()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(text, name):
    """The sum of NAME's samples over their labels (e.g. {frontend="cachefiles"})."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.split()[-1])
    return total


def replay(work, image, ranges, daemon_args, scrape=False):
    out = f"{work}/replay.json"
    cmd = [ORIGIN_BENCH, "--work", f"{work}/sim", "--image", image, "--id", "python", "--ranges",
           ranges, "--out", out]
    extra = []
    if scrape:
        port, mfile = free_port(), f"{work}/metrics.txt"
        if os.path.exists(mfile):
            os.remove(mfile)
        cmd += ["--scrape", f"{port} {mfile}"]
        extra = ["--metrics-listen", f"127.0.0.1:{port}"]
    subprocess.run(cmd + ["--"] + DAEMON + daemon_args + extra, check=True,
                   stdout=subprocess.DEVNULL)
    r = json.load(open(out))
    if scrape:
        text = open(mfile).read() if os.path.exists(mfile) else ""
        r["metrics"] = {k: metric(text, "lazyblob_" + k) for k in (
            "prefetch_bytes_total", "prefetch_hits_total", "prefetch_wasted_bytes_total",
            "replays_total", "replay_seconds_total", "traces_recorded_total",
            "origin_fetched_ahead_chunks_total")}
        r["metrics_lines"] = [l for l in text.splitlines() if not l.startswith("#") and any(
            w in l for w in ("prefetch", "replay", "trace", "origin_chunks", "fetched_ahead"))]
    return r


# Mode (d)'s recording node: records the first RECORD_S seconds after OPEN.
RECORD_S = "30"


def run_modes(a, proxy, rep):
    registry = f"http://{proxy.addr}/{a.repo}"
    res = {}
    # (a) pull the whole image, then read the start set locally.
    store = f"{a.work}/pull-{rep}"
    shutil.rmtree(store, ignore_errors=True)
    r0, b0 = proxy.counters()
    t0 = time.monotonic()
    subprocess.run([LAZYBLOB, "--store", store, "pull", "--registry", registry, "python"],
                   check=True, stdout=subprocess.DEVNULL)
    pull_s = time.monotonic() - t0
    r1, b1 = proxy.counters()
    local = replay(a.work, a.image, a.ranges, ["--store", store])
    res["pull"] = {"ttfb_s": pull_s + local["ttfb_s"], "total_s": pull_s + local["total_s"],
                   "pull_s": pull_s, "bytes": b1 - b0, "requests": r1 - r0}
    shutil.rmtree(store, ignore_errors=True)
    # (b) lazy from the registry, empty store and origin cache; (c) the same, warm. Both
    # with --no-trace-replay: from rep 1 on the registry holds a record, which plain lazy
    # nodes would fetch and replay (until this was passed, reps 1+ of (b) were replays).
    cache = f"{a.work}/origin-{rep}"
    shutil.rmtree(cache, ignore_errors=True)
    for mode in ("lazy", "warm"):
        r0, b0 = proxy.counters()
        m = replay(a.work, a.image, a.ranges, ["--origin", registry, "--origin-cache", cache,
                                               "--no-trace-replay"])
        r1, b1 = proxy.counters()
        res[mode] = {"ttfb_s": m["ttfb_s"], "total_s": m["total_s"],
                     "mount_s": m.get("mount_s", 0), "bytes": b1 - b0,
                     "requests": r1 - r0, "kernel_reads": m.get("kernel_reads", 0),
                     "kernel_read_bytes": m.get("kernel_read_bytes", 0)}
    shutil.rmtree(cache, ignore_errors=True)
    # (d) lazy with replay of a record made on another node. Node 1 (empty origin cache,
    # replay off so it records even when the registry already holds a record) runs the start
    # with --trace-record; its record (<origin cache>/traces/, saved when the daemon stops) is
    # published with `lazyblob push` from a store holding the blob (an origin-only node has
    # no store to push from: the record file is copied into the pushing store's traces/, the
    # same file name, keyed by blob id); the push merges it with the registry's record. Node 2
    # (empty origin cache and kernel cache) fetches the record at OPEN and replays it while
    # the start runs: timed like (b).
    rec = f"{a.work}/record-{rep}"
    shutil.rmtree(rec, ignore_errors=True)
    mrec = replay(a.work, a.image, a.ranges, ["--origin", registry, "--origin-cache", rec,
                                              "--trace-record", RECORD_S,
                                              "--no-trace-replay"] + RECORD_EXTRA)
    traces = f"{rec}/traces"
    files = os.listdir(traces) if os.path.isdir(traces) else []
    if not files:
        raise SystemExit("origin bench: the recording node saved no record")
    os.makedirs(f"{a.work}/src/traces", exist_ok=True)
    for f in files:
        shutil.copy(f"{traces}/{f}", f"{a.work}/src/traces/{f}")
        if KEEP_RECORDS:
            shutil.copy(f"{traces}/{f}", f"{KEEP_RECORDS}/rep{rep}-{f}")
    push = subprocess.run([LAZYBLOB, "--store", f"{a.work}/src", "push", "--json", "--registry",
                           f"{a.upstream}/{a.repo}", "python"], check=True,
                          capture_output=True, text=True)
    trace = json.loads(push.stdout)["blobs"][0].get("trace", {})
    shutil.rmtree(rec, ignore_errors=True)
    cache = f"{a.work}/replay-{rep}"
    shutil.rmtree(cache, ignore_errors=True)
    r0, b0 = proxy.counters()
    m = replay(a.work, a.image, a.ranges,
               ["--origin", registry, "--origin-cache", cache] + REPLAY_EXTRA, scrape=True)
    r1, b1 = proxy.counters()
    res["replay"] = {"ttfb_s": m["ttfb_s"], "total_s": m["total_s"],
                     "mount_s": m.get("mount_s", 0), "bytes": b1 - b0,
                     "requests": r1 - r0, "record_chunks": trace.get("chunks", 0),
                     "kernel_reads": m.get("kernel_reads", 0),
                     "kernel_read_bytes": m.get("kernel_read_bytes", 0),
                     "recording_node_total_s": mrec["total_s"]}
    res["replay"].update(m["metrics"])
    res["replay"]["metrics_lines"] = m["metrics_lines"]
    shutil.rmtree(cache, ignore_errors=True)
    return res


MODES = ("pull", "lazy", "warm", "replay")
LABELS = {"pull": "(a) full pull, then local", "lazy": "(b) lazy", "warm": "(c) warm",
          "replay": "(d) lazy + replay of another node's record"}
REPLAY_KEYS = ("kernel_reads", "kernel_read_bytes", "prefetch_bytes_total", "prefetch_hits_total", "prefetch_wasted_bytes_total",
               "replays_total", "replay_seconds_total", "record_chunks",
               "recording_node_total_s", "origin_fetched_ahead_chunks_total")


def median_of(runs, mode, key):
    return statistics.median(r[mode][key] for r in runs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", required=False)
    p.add_argument("--image", required=False)
    p.add_argument("--ranges", required=False)
    p.add_argument("--start-set", required=False)
    p.add_argument("--tree-kind", default="corpus")
    p.add_argument("--upstream", required=False)
    p.add_argument("--repo", required=False)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--settings", nargs="+", required=False)
    p.add_argument("--out", required=True)
    p.add_argument("--reports-only", action="store_true",
                   help="rewrite OUT.md and OUT.png from OUT.json, no runs")
    a = p.parse_args()
    if a.reports_only:
        r = json.load(open(a.out + ".json"))
        write_md(r, a.out + ".md")
        plot(r, a.out + ".png")
        return
    start = json.load(open(a.start_set))
    image_bytes = os.path.getsize(a.image)
    result = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "image_bytes": image_bytes,
              "start_set": start, "tree": a.tree_kind, "daemon_args": EXTRA, "reps": a.reps, "host": os.uname().nodename,
              "cpus": os.cpu_count(), "settings": []}
    for setting in a.settings:
        rtt, mbit = (float(x) for x in setting.split())
        proxy = Proxy(a.work, a.upstream, rtt, mbit)
        runs, loads = [], []
        try:
            for rep in range(a.reps):
                loads.append(os.getloadavg()[0])
                runs.append(run_modes(a, proxy, rep))
                print(f"origin bench: {rtt:g} ms / {mbit:g} Mbit/s rep {rep}: " +
                      ", ".join(f"{m} {runs[-1][m]['total_s']:.3f} s" for m in runs[-1]),
                      file=sys.stderr)
        finally:
            proxy.close()
        s = {"rtt_ms": rtt, "mbit": mbit, "load_avg_1m": loads, "runs": runs, "median": {}}
        for mode in MODES:
            s["median"][mode] = {k: median_of(runs, mode, k)
                                 for k in ("ttfb_s", "total_s", "bytes", "requests")}
        s["median"]["replay"].update({k: median_of(runs, "replay", k) for k in REPLAY_KEYS})
        s["median"]["lazy"].update({k: median_of(runs, "lazy", k)
                                    for k in ("kernel_reads", "kernel_read_bytes")})
        med = s["median"]
        # Mode (d)'s targets (issue 16): medians of the per-rep (paired) ratios.
        s["replay_over_lazy_time"] = statistics.median(
            r["replay"]["total_s"] / r["lazy"]["total_s"] for r in runs)
        s["replay_over_pull_time"] = statistics.median(
            r["replay"]["total_s"] / r["pull"]["total_s"] for r in runs)
        s["lazy_over_pull_time"] = med["lazy"]["total_s"] / med["pull"]["total_s"]
        s["lazy_bytes_over_start_set"] = med["lazy"]["bytes"] / start["range_bytes"]
        s["lazy_fraction_of_image"] = med["lazy"]["bytes"] / image_bytes
        s["pull_fraction_of_image"] = med["pull"]["bytes"] / image_bytes
        result["settings"].append(s)
    json.dump(result, open(a.out + ".json", "w"), indent=1)
    write_md(result, a.out + ".md")
    plot(result, a.out + ".png")


def write_md(r, path):
    st = r["start_set"]
    lines = [
        "# Registry origin: a container start, lazy (with and without replay) vs full pull",
        "",
        f"{r['date']}, host `{r['host']}` ({r['cpus']} CPUs, shared), natively through the kernel "
        "simulator (the VM is too slow to time). Real docker-registry 2.8 on loopback behind "
        "bench/origin/delay_proxy.py (RTT per connection and per request, one shared bandwidth "
        "cap). Image: " + TREES[r["tree"]] + " (EROFS, uncompressed, "
        f"{r['image_bytes'] / 2**20:.1f} MiB), imported with 64 KiB CDC chunks and pushed with "
        "`lazyblob push`. Start set: what `python3 -c 'import json, ssl, sqlite3, email'` "
        f"opens ({st['files_in_image']} files and directories, {st['range_bytes'] / 2**20:.2f} "
        "MiB: inode blocks, and the pages of each opened file that were in the page cache after "
        "the run, readahead included; this kernel maps executables and libraries whole), "
        "replayed in open order, one reader. "
        f"Medians of {r['reps']} runs; lazyblobd "
        + (" ".join(r.get("daemon_args", [])) or "defaults (1 MiB write-ahead, 4 MiB coalescing)")
        + ".",
        "",
        "| network | mode | time to first byte (s) | start set (s) | bytes transferred (MiB) "
        "| requests | load (1 min) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in r["settings"]:
        net = f"{s['rtt_ms']:g} ms / {s['mbit']:g} Mbit/s"
        load = "/".join(f"{x:.1f}" for x in s["load_avg_1m"])
        for mode in MODES:
            m, label = s["median"][mode], LABELS[mode]
            lines.append(f"| {net} | {label} | {m['ttfb_s']:.3f} | {m['total_s']:.3f} | "
                         f"{m['bytes'] / 2**20:.2f} | {m['requests']:g} | {load} |")
    lines += ["", "| network | lazy / full-pull time | lazy bytes / start-set bytes "
              "| lazy bytes / image | pull bytes / image | pull floor (s) | lazy floor (s) |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in r["settings"]:
        med, bw = s["median"], s["mbit"] * 1e6 / 8
        rtt = s["rtt_ms"] / 1000
        # Floors: bytes at the link rate (+ one round trip per request for lazy, whose
        # reader waits for each of its misses in turn; an upper bound on overlap).
        pull_floor = med["pull"]["bytes"] / bw + rtt
        lazy_floor = med["lazy"]["bytes"] / bw + rtt
        lines.append(f"| {s['rtt_ms']:g} ms / {s['mbit']:g} Mbit/s | "
                     f"{s['lazy_over_pull_time']:.3f} | {s['lazy_bytes_over_start_set']:.2f} | "
                     f"{s['lazy_fraction_of_image']:.3f} | {s['pull_fraction_of_image']:.3f} | "
                     f"{pull_floor:.2f} | {lazy_floor:.2f} |")
    lines += ["", "Floors: the bytes transferred at the link rate plus one round trip; the "
              "lazy reader also pays a round trip for each miss it waits on (it reads its "
              "files one after the other), which the floor leaves out."]
    lines += ["", "Targets (issue 11): lazy start <= 0.25x the full pull at 20 ms / 200 Mbit/s; "
              "bytes transferred <= 2x the bytes the start set reads."]
    lines += [
        "", "## (d) lazy with replay of a record made on another node (issue 16)", "",
        "Per rep: node 1 (empty origin cache, `--trace-record " + RECORD_S + " --no-trace-replay`) "
        "runs the start; its record (`<origin cache>/traces/`, saved when the daemon stops) is "
        "copied into a store holding the blob and published with `lazyblob push` (merged with "
        "the registry's record from the earlier reps); node 2 (empty origin cache and kernel "
        "cache, replay on by default: unbounded bandwidth, stop after "
        "32 reads off the record) fetches the record at OPEN and replays it while the start "
        "runs, timed like (b). Prefetch figures: node 2's lazyblob_prefetch_* and "
        "lazyblob_replay_* after the start (the file closed, untimed). On this (cachefiles, "
        "simulated) front end the kernel never asks again for a range replay wrote, so "
        "prefetch hits count only demand READs whose chunks replay had written before the "
        "kernel asked, and wasted bytes are an upper bound (the daemon's metric help says so).",
        "",
        "| network | record (chunks) | prefetch (MiB) | prefetch hits | wasted prefetch (MiB, "
        "upper bound) | replay time (s) | kernel READs (MiB asked), lazy -> replay "
        "| replay / lazy (target <= 0.5) | replay / full pull (target <= 0.15) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in r["settings"]:
        d, lz = s["median"]["replay"], s["median"]["lazy"]
        at20 = s["rtt_ms"] == 20 and s["mbit"] == 200
        ok = lambda v, t: f"{v:.3f}" + ((" met" if v <= t else " NOT met") if at20 else "")
        lines.append(f"| {s['rtt_ms']:g} ms / {s['mbit']:g} Mbit/s | {d['record_chunks']:g} | "
                     f"{d['prefetch_bytes_total'] / 2**20:.2f} | {d['prefetch_hits_total']:g} | "
                     f"{d['prefetch_wasted_bytes_total'] / 2**20:.2f} | "
                     f"{d['replay_seconds_total']:.3f} | "
                     f"{lz.get('kernel_reads', 0):g} ({lz.get('kernel_read_bytes', 0) / 2**20:.1f}) -> "
                     f"{d['kernel_reads']:g} ({d['kernel_read_bytes'] / 2**20:.1f}) | "
                     f"{ok(s['replay_over_lazy_time'], 0.5)} | "
                     f"{ok(s['replay_over_pull_time'], 0.15)} |")
    lines += ["", "Ratios: medians of the per-rep ratios of the start-set times (the modes of "
              "one rep run back to back, so they share its load). Targets (issue 16) apply at "
              "20 ms / 200 Mbit/s."]
    lines += ["", "How replay overlaps demand: at OPEN the whole record goes to the origin "
              "(ChunkSource::FetchAhead), which fetches it in record order with "
              "--origin-ahead-requests (default 4) Range GETs in flight, neighbours coalesced; "
              "a demand READ of a chunk under way joins that fetch, and one of a chunk not yet "
              "started sends its own request at once (it never queues behind replay). Replay's "
              "writes into the cache file still wait while a demand is in flight.", ""]
    lines += ["| network | replay: bytes transferred (MiB) | chunks fetched ahead | mount (s), "
              "lazy -> replay | time to first byte (s) | link floor of its bytes (s) | "
              "start set (s) |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in r["settings"]:
        d = s["median"]["replay"]
        floor = d["bytes"] * 8 / (s["mbit"] * 1e6)
        mounts = [statistics.median(run[m]["mount_s"] for run in s["runs"])
                  if all("mount_s" in run[m] for run in s["runs"]) else None
                  for m in ("lazy", "replay")]  # none before 2026-12-07
        mount = "-" if None in mounts else f"{mounts[0]:.3f} -> {mounts[1]:.3f}"
        lines.append(f"| {s['rtt_ms']:g} ms / {s['mbit']:g} Mbit/s | {d['bytes'] / 2**20:.2f} | "
                     f"{d.get('origin_fetched_ahead_chunks_total', 0):g} | {mount} | "
                     f"{d['ttfb_s']:.3f} | {floor:.2f} | {d['total_s']:.3f} |")
    lines += ["", "Link floor: the replay node's bytes at the link rate. Where the rest of "
              "the 20 ms start goes (trials of 2026-12-07; the table's run was made at the loads "
              "shown above, the bench's own processes included):",
              "",
              "- **What made replay fast (2026-12-07):** (1) the record's bytes: a record keeps "
              "every chunk the recording node wrote ahead (on cachefiles the daemon cannot tell "
              "which of those the kernel then read), so the recording node's write-ahead now "
              "starts from at most 256 KiB while it records (`--trace-record-write-ahead`): 466 "
              "chunks and about 15 MB instead of 770 and 26 MB, for a recording node about 1.5 s "
              "slower (its own start, once per image); (2) while a replay runs, demands write "
              "only their own chunks; (3) `--origin-ahead-requests` 16 instead of 4 (at 20 ms, "
              "4 requests in flight left the fetch behind the reader); (4) the record loads "
              "while the blob's map does, not after it (a replaying node's mount was 0.12 s "
              "longer). In one-rep trials, (1)+(2)+(3) took replay from 1.5 s to 1.09 s.",
              "- **Bytes:** with `--write-ahead 0` on every node (ORIGIN_BENCH_DAEMON_ARGS) the "
              "record is the exact start set, 267 chunks and 9.2 MB on the wire; plain lazy then "
              "takes 19.4 s, so that is no default.",
              "- **Merging:** records were once merged by relative rank, which zipped two "
              "starts' runs into alternating chunks; fetch-ahead then sent 70 single-chunk "
              "requests and replay took 1.9-2.3 s from the second rep on. The merge now keeps "
              "the older record's order (store/FORMAT.md, \"Access traces\").",
              "- **Earlier full runs** showed replay no faster than lazy: their lazy nodes "
              "replayed the registry's record too. Lazy and warm now run with "
              "`--no-trace-replay`.", ""]
    open(path, "w").write("\n".join(lines))


def plot(r, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    modes = MODES
    width = 0.8 / len(r["settings"])
    for i, s in enumerate(r["settings"]):
        xs = [k + i * width for k in range(len(modes))]
        ax.bar(xs, [s["median"][m]["total_s"] for m in modes], width,
               label=f"{s['rtt_ms']:g} ms / {s['mbit']:g} Mbit/s")
    ax.set_xticks([k + width * (len(r["settings"]) - 1) / 2 for k in range(len(modes))])
    ax.set_xticklabels(["(a) full pull + local", "(b) lazy", "(c) warm", "(d) lazy + replay"])
    ax.set_ylabel("container start (s, median)")
    ax.set_title("python3 start set from an OCI registry")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
