#!/usr/bin/env python3
"""Turns read_bench's JSON (engine vs limit, scale) and bench/import's JSON into a markdown
report with PNG plots. Usage (bench/run.sh calls it):
  make_report.py --read read.json --scale read-scale.json --import-json import.json \
                 --out-dir bench/results [--suffix -smoke]
Missing inputs are reported as missing, not fatal."""
import argparse, json, os, platform, statistics, subprocess, datetime

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt


# EngineStats::StageTime's stages, in the engine's order (core/engine_stats.h).
STAGES = ("lookup", "read", "decompress", "verify", "write", "complete")


def load(path):
    if not path:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def summarize(read):
    """(threads, pattern, read_bytes) -> medians over reps."""
    groups = {}
    for r in read["runs"]:
        groups.setdefault((r["threads"], r["pattern"], r["read_bytes"]), []).append(r)
    out = {}
    for k, rs in sorted(groups.items()):
        out[k] = {
            "engine_mb_s": med([r["engine_mb_s"] for r in rs]),
            "limit_mb_s": med([r["limit_mb_s"] for r in rs]),
            "ratio": med([r["ratio"] for r in rs]),
            "ratios": [round(r["ratio"], 3) for r in rs],
            "p50_us": med([r["engine_read_latency"]["p50_us"] for r in rs]),
            "p99_us": med([r["engine_read_latency"]["p99_us"] for r in rs]),
            "reader_p50_us": med([r["reader_latency"]["p50_us"] for r in rs]),
            "reader_p99_us": med([r["reader_latency"]["p99_us"] for r in rs]),
            "reads": med([r["reads_sent"] for r in rs]),
            "faults": (med([r["minor_faults"] for r in rs])
                       if all("minor_faults" in r for r in rs) else None),
            "share": {s: med([r["worker_share"][s] for r in rs])
                      for s in ("store_read_chunk", "complete", "receive")},
            # The engine's own per-stage timing (absent in JSON from before it existed).
            "stages": ({s: med([r["engine_stages"]["worker_share"][s] for r in rs])
                        for s in STAGES} if all("engine_stages" in r for r in rs) else None),
            "hist": [sum(x) for x in zip(*[r["engine_read_hist_log2us"] for r in rs])],
        }
    return out


def kib(b):
    return f"{b // 1024} KiB" if b < (1 << 20) else f"{b >> 20} MiB"


def plot_throughput(summary, path):
    threads = sorted({k[0] for k in summary})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for pattern, style in (("seq", "-"), ("rand", "--")):
        lim = [med([v["limit_mb_s"] for k, v in summary.items() if k[0] == t and k[1] == pattern])
               for t in threads]
        ax1.plot(threads, lim, "k" + style, marker="s", label=f"limit {pattern}")
        for size, color in ((131072, "tab:blue"), (1048576, "tab:orange")):
            ks = [(t, pattern, size) for t in threads if (t, pattern, size) in summary]
            if not ks:
                continue
            ax1.plot([k[0] for k in ks], [summary[k]["engine_mb_s"] for k in ks], style,
                     color=color, marker="o", label=f"engine {pattern} {kib(size)} READs")
            ax2.plot([k[0] for k in ks], [summary[k]["ratio"] for k in ks], style, color=color,
                     marker="o", label=f"{pattern} {kib(size)}")
    ax1.set(xlabel="threads", ylabel="MB/s", title="READ throughput (median)", xticks=threads)
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.axhline(0.9, color="green", lw=1, ls=":", label="target 0.9")
    ax2.set(xlabel="threads", ylabel="engine / limit", title="ratio to the limit (median)",
            xticks=threads, ylim=(0, max(1.2, max(v["ratio"] for v in summary.values()) + 0.1)))
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency(summary, path):
    sizes = sorted({k[2] for k in summary})
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.2), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        for k, v in summary.items():
            if k[2] != size:
                continue
            h = v["hist"]
            total = sum(h) or 1
            xs = [2 ** i for i in range(len(h))]
            cdf, acc = [], 0
            for c in h:
                acc += c
                cdf.append(acc / total)
            ax.step(xs, cdf, where="post", ls="-" if k[1] == "seq" else "--",
                    label=f"{k[0]} thr {k[1]}")
        ax.set_xscale("log", base=2)
        ax.set(xlabel="READ latency, engine view (µs, log2 buckets)", ylabel="fraction ≤ x",
               title=f"{kib(size)} READs: latency CDF")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scale(scale, path):
    cps = scale["checkpoints"]
    imgs = [c["images"] for c in cps]
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(15, 4.2))
    a1.plot(imgs, [c["engine_read_latency"]["p50_us"] / 1000 for c in cps], marker="o",
            label="p50")
    a1.plot(imgs, [c["engine_read_latency"]["p99_us"] / 1000 for c in cps], marker="o",
            label="p99")
    a1.set(xlabel="images in the store", ylabel="ms", title="READ latency (engine view)",
           ylim=(0, None))
    a1.legend()
    a2.plot(imgs, [c["rss_kib_peak"] / 1024 for c in cps], marker="o", label="peak RSS")
    a2.plot(imgs, [c["store_pack_bytes"] / 2**20 for c in cps], marker="s", label="pack MiB")
    a2.set(xlabel="images in the store", ylabel="MiB", title="daemon-side RSS and store size")
    a2.legend()
    imp = scale["imports"]
    a3.plot([i["variant"] + 1 for i in imp], [i["mb_s"] for i in imp], marker=".")
    a3.set(xlabel="images in the store after the import", ylabel="MB/s",
           title=f"import speed ({scale['variant_mib']} MiB variants)")
    for a in (a1, a2):
        a.set_xscale("log")
        a.set_xticks(imgs)
        a.set_xticklabels([str(i) for i in imgs])
    a2.set_ylim(0, None)
    a3.set_ylim(0, None)
    for a in (a1, a2, a3):
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_section(read, summary, suffix, md):
    md.append("## 1. READ throughput: the request engine vs the limit (host, simulator)\n")
    md.append(
        f"Blob `{read['blob']}`: {read['blob_bytes'] / 2**20:.0f} MiB EROFS image "
        f"({read['chunks']} chunks, {read['stored_bytes'] / 2**20:.0f} MiB compressed), "
        f"{read['reps']} repetition(s). Each engine run: fresh simulator cache dir (cold cache "
        "file), new RequestEngine (cold decompressed-chunk cache, 256 MiB), default 1 MiB "
        "write-ahead, store opened as the daemon opens it (secondary reader + SERVING lock); "
        "N reader threads each read a contiguous 1/N slice of the blob through "
        "KernelSimulator::Read (in order, or shuffled), engine worker_threads = N. The limit: "
        "N threads doing only pread of the compressed chunk + ZSTD_decompress + aligned O_DIRECT "
        "pwrite into a fresh file in the same filesystem (no index lookup, no verification, no "
        "messages), run back to back with the engine runs of the same (threads, pattern). "
        "Ratio = limit time / engine time, paired per repetition, median. Pack files are in "
        "the page cache in both (warm store, cold cache file).\n")
    md.append("| threads | pattern | READ size | engine MB/s | limit MB/s | **ratio** (per rep) | "
              "READs | READ p50 | READ p99 | reader call p50 / p99 |")
    md.append("|---:|---|---|---:|---:|---|---:|---:|---:|---|")
    for k, v in summary.items():
        md.append(f"| {k[0]} | {k[1]} | {kib(k[2])} | {v['engine_mb_s']:.0f} | "
                  f"{v['limit_mb_s']:.0f} | **{v['ratio']:.2f}** ({', '.join(map(str, v['ratios']))}) | "
                  f"{v['reads']:.0f} | {v['p50_us'] / 1000:.1f} ms | {v['p99_us'] / 1000:.1f} ms | "
                  f"{v['reader_p50_us'] / 1000:.1f} / {v['reader_p99_us'] / 1000:.1f} ms |")
    md.append("\nLatency is the **engine's view**: from the READ message read off the device to "
              "its completion (EngineStats::RequestDone), including the write-ahead done before "
              "completing. The reader-call column is KernelSimulator::Read (one call of the "
              "READ size; may cover several READs, or none when write-ahead already filled it).\n")
    md.append(f"![throughput](read{suffix}-throughput.png)\n")
    md.append(f"![latency](read{suffix}-latency.png)\n")
    p = read["stage_probe"]["seconds"]
    tot = sum(p[s] for s in ("lookup", "read", "decompress", "verify", "write"))
    md.append("### Where the time goes\n")
    md.append(f"Stage probe: one thread serves every chunk ({read['stage_probe']['chunks']}) "
              "once, timing each step; `lookup` = the RocksDB index lookup inside "
              "ChunkStore::ReadChunk (its own timing), `read`, `decompress` and `verify` = the "
              "same steps done directly, `write` = aligned O_DIRECT pwrite into a fresh "
              "file.\n")
    md.append("| stage | seconds | share |")
    md.append("|---|---:|---:|")
    for s in ("lookup", "read", "decompress", "verify", "write"):
        md.append(f"| {s} | {p[s]:.3f} | {100 * p[s] / tot:.1f}% |")
    stage_rows = [(k, v) for k, v in summary.items() if v["stages"] is not None]
    if not stage_rows:
        md.append("\nNo per-stage engine timing in this JSON (read_bench predates "
                  "EngineStats::StageTime).\n")
        return
    md.append("\nEngine runs, share of the worker threads' time (threads × wall) in each stage, "
              "from the engine's own timing (EngineStats::StageTime, exported as "
              "`lazyblob_stage_seconds_total`): `lookup`, `read`, `decompress` and `verify` are "
              "the store's split of ChunkSource::ReadChunk for the chunks it loaded "
              "(decompressed-chunk cache hits cost none of them), `write` is the anon-fd "
              "O_DIRECT pwritev (WriteBlocks) of each run of consecutive chunks written, for the "
              "READ itself or its write-ahead, `complete` is CacheDevice::CompleteRead. `other` is the rest: "
              "worker threads waiting for READs (the reader's own time and the simulator round "
              "trip), scheduling, chunk-cache and SEEK_HOLE checks. `receive` is the dispatcher "
              "thread reading messages (not a worker). `faults` = minor page faults of the "
              "process during the run (median over reps, thousands): a run that fills its "
              "fresh 256 MiB decompressed-chunk cache with memory the process has not touched "
              "before (~67k faults) pays for them inside `decompress`; read_bench runs one "
              "discarded engine warm-up first, as a long-running daemon pays this once.\n")
    md.append("| threads | pattern | READ size | " + " | ".join(STAGES) +
              " | other | receive | faults |")
    md.append("|---:|---|---|" + "---:|" * (len(STAGES) + 3))
    for k, v in stage_rows:
        st = v["stages"]
        other = 1 - sum(st.values())
        cells = " | ".join(f"{100 * st[s]:.1f}%" for s in STAGES)
        faults = "-" if v["faults"] is None else f"{v['faults'] / 1000:.1f}k"
        md.append(f"| {k[0]} | {k[1]} | {kib(k[2])} | {cells} | {100 * other:.1f}% | "
                  f"{100 * v['share']['receive']:.2f}% | {faults} |")
    md.append("")


def scale_section(scale, suffix, md):
    md.append("## 4. Scale: a growing store\n")
    md.append(f"Variants of the first {scale['variant_mib']} MiB of the image, each with "
              f"{100 * scale['mutated_fraction']:.0f}% of its bytes overwritten by random 64 KiB "
              "runs, imported one after another (store API) into one store. At each checkpoint a "
              "fresh process opens the store as the daemon does and reads variant 0 through the "
              "engine (1 thread, random 128 KiB READs); peak RSS is that process's VmHWM.\n")
    md.append("| images | chunks | pack MiB | READ p50 | READ p99 | peak RSS MiB |")
    md.append("|---:|---:|---:|---:|---:|---:|")
    for c in scale["checkpoints"]:
        lat = c["engine_read_latency"]
        md.append(f"| {c['images']} | {c['store_chunks']} | {c['store_pack_bytes'] / 2**20:.0f} | "
                  f"{lat['p50_us'] / 1000:.2f} ms | {lat['p99_us'] / 1000:.2f} ms | "
                  f"{c['rss_kib_peak'] / 1024:.0f} |")
    imp = scale["imports"]
    def window(lo, hi):
        xs = [i["mb_s"] for i in imp if lo <= i["variant"] < hi]
        return f"{med(xs):.0f}" if xs else "-"
    md.append(f"\nImport speed (median MB/s): first image {window(0, 1)}, images 2-10 "
              f"{window(1, 10)}, images 11-50 {window(10, 50)}. New chunks per variant "
              f"(median): {med([i['new_chunks'] for i in imp[1:]]) if len(imp) > 1 else '-'} of "
              f"{imp[0]['chunks']}.\n")
    cc = scale["chunk_cache"]
    md.append("Bounded decompressed-chunk cache (whole blob read sequentially, 2 threads):\n")
    md.append("| chunk cache | peak RSS MiB | MB/s |")
    md.append("|---:|---:|---:|")
    for mib, c in sorted(cc.items(), key=lambda x: int(x[0])):
        md.append(f"| {mib} MiB | {c['rss_kib_peak'] / 1024:.0f} | {c['mb_s']:.0f} |")
    md.append(f"\n![scale](read{suffix}-scale.png)\n")


def import_section(imp, md):
    md.append("## 3. Import and dedup (bench/import/run.sh)\n")
    if not imp:
        md.append("No results (bench/results/import.json missing).\n")
        return
    md.append(f"From `{imp.get('generated', '?')}` at commit {imp.get('commit', '?')}, "
              f"{imp.get('reps', '?')} rep(s); full table in import.md.\n")
    md.append("| tool | MB/s (median) | MB per CPU-s | dedup ratio | stored bytes |")
    md.append("|---|---:|---:|---:|---:|")
    for name, t in imp.get("tools", {}).items():
        if not t.get("reps_ok"):
            md.append(f"| {name} | failed | | | |")
            continue
        md.append(f"| {name} | {t['mb_per_s_median']:.1f} | {t['mb_per_cpu_s_median']:.1f} | "
                  f"{t['dedup_ratio']:.3f} | {t['store_file_bytes'] / 2**20:.0f} MiB |")
    md.append("")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--read")
    ap.add_argument("--scale")
    ap.add_argument("--import-json")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--suffix", default="")
    a = ap.parse_args()
    read, scale, imp = load(a.read), load(a.scale), load(a.import_json)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=os.path.dirname(__file__)).stdout.strip()
    md = ["# lazyblob benchmarks\n",
          f"Generated {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC at commit {commit} on "
          f"{os.cpu_count()} CPUs, kernel {platform.release()}, by `bench/run.sh"
          f"{' --smoke' if a.suffix else ''}`. The machine is shared and noisy: figures are "
          "medians and ratios measured side by side in the same run.\n"]
    if read:
        summary = summarize(read)
        plot_throughput(summary, os.path.join(a.out_dir, f"read{a.suffix}-throughput.png"))
        plot_latency(summary, os.path.join(a.out_dir, f"read{a.suffix}-latency.png"))
        read_section(read, summary, a.suffix, md)
    else:
        md.append("## 1. READ throughput\n\nNo results (read_bench failed).\n")
    # Section 2 is written by bench/vm/report.py (vm-read.md next to this report).
    vm_md = os.path.join(a.out_dir, f"vm-read{a.suffix}.md")
    if os.path.exists(vm_md):
        with open(vm_md) as f:
            md.append(f.read().rstrip() + "\n")
    else:
        md.append("## 2. Real kernel (VM)\n\nNo results: run bench/vm/run.sh (bench/run.sh does, "
                  "unless SKIP_VM=1).\n")
    import_section(imp, md)
    if scale:
        plot_scale(scale, os.path.join(a.out_dir, f"read{a.suffix}-scale.png"))
        scale_section(scale, a.suffix, md)
    else:
        md.append("## 4. Scale\n\nNo results (scale run failed).\n")
    # Section 5 is written by bench/fanotify/report.py (fanotify-read.md, headings demoted).
    fan_md = os.path.join(a.out_dir, f"fanotify-read{a.suffix}.md")
    if os.path.exists(fan_md):
        with open(fan_md) as f:
            body = f.read().rstrip().split("\n")
        body = ["#" + l if l.startswith("##") else l for l in body]
        body[0] = "## 5. " + body[0].lstrip("# ")
        md.append("\n".join(body) + "\n")
        if os.path.exists(os.path.join(a.out_dir, f"fanotify-read{a.suffix}.png")):
            md.append(f"![fanotify](fanotify-read{a.suffix}.png)\n")
    else:
        md.append("## 5. fanotify front end\n\nNo results: run bench/fanotify/run.sh (bench/run.sh "
                  "does; it needs root and Linux >= 6.14).\n")
    name = "REPORT.md" if not a.suffix else f"REPORT{a.suffix}.md"
    with open(os.path.join(a.out_dir, name), "w") as f:
        f.write("\n".join(md) + "\n")
    print(os.path.join(a.out_dir, name))


if __name__ == "__main__":
    main()
