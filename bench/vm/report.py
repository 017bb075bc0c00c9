#!/usr/bin/env python3
"""Turns the facts of the VM cold-read benchmark (bench/vm/guest-bench.sh) into
vm-read.json, vm-read.md and vm-read.png: medians per (workload, mode, phase) and the
ratio lazyblob / loop, paired per repetition (same boot, back to back)."""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess

TARGET_COLD = 1.3
STAGES = ("lookup", "read", "decompress", "verify", "write", "complete")


def parse_facts(path):
    facts = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"FACT bench-cold-read ([^=]+)=(.*)$", line.strip())
            if m:
                facts[m.group(1)] = m.group(2).strip()
    return facts


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--facts", required=True)
    ap.add_argument("--console", required=True)
    ap.add_argument("--file-mib", type=int, required=True)
    ap.add_argument("--mem", default="")
    ap.add_argument("--daemon-args", default="")
    ap.add_argument("--import-args", default="")
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args()

    facts = parse_facts(args.facts)
    if not facts:
        raise SystemExit("report.py: no bench-cold-read facts in " + args.facts)
    boot = ""
    with open(args.console, errors="replace") as f:
        for line in f:
            if "@@E2E BOOT" in line:
                boot = line.split("@@E2E BOOT", 1)[1].strip()
    reps = int(facts.get("reps", "1"))
    ms = {}  # (workload, mode, phase) -> [ms per rep]
    for key, value in facts.items():
        m = re.match(r"m\.(\w+)\.(\w+)\.(\w+)\.(\d+)$", key)
        if m:
            ms.setdefault(m.group(1, 2, 3), {})[int(m.group(4))] = int(value)

    results = {"reps": reps, "boot": boot, "guest_mem": args.mem, "workloads": {},
               "daemon_args": args.daemon_args, "import_args": args.import_args,
               "target_cold_ratio": TARGET_COLD}
    workloads = [w for w in ("file", "tree") if (w, "lazyblob", "cold") in ms]
    for w in workloads:
        nbytes = int(facts.get(f"bytes.{w}", "0"))
        wres = {"bytes": nbytes, "reads_per_rep": [], "phases": {}}
        for r in range(1, reps + 1):
            wres["reads_per_rep"].append(int(facts.get(f"reads.{w}.{r}", "0")))
        stages = {}
        for st in STAGES:
            per_rep = [int(facts[k]) for r in range(1, reps + 1)
                       if (k := f"stage_ms.{w}.{st}.{r}") in facts]
            if per_rep:
                stages[st] = statistics.median(per_rep)
        wres["stage_ms_median"] = stages
        for phase in ("cold", "warm"):
            lb = ms.get((w, "lazyblob", phase), {})
            lp = ms.get((w, "loop", phase), {})
            pr = ms.get((w, "probe", phase), {})
            paired = [lb[r] / lp[r] for r in sorted(lb) if r in lp and lp[r] > 0]
            paired_probe = [pr[r] / lp[r] for r in sorted(pr) if r in lp and lp[r] > 0]
            entry = {
                "lazyblob_ms": [lb[r] for r in sorted(lb)],
                "probe_ms": [pr[r] for r in sorted(pr)],
                "loop_ms": [lp[r] for r in sorted(lp)],
                "ratio_per_rep": [round(x, 3) for x in paired],
                "probe_ratio_per_rep": [round(x, 3) for x in paired_probe],
            }
            if lb and lp and paired:
                entry["lazyblob_ms_median"] = statistics.median(lb.values())
                entry["loop_ms_median"] = statistics.median(lp.values())
                entry["ratio_median"] = round(statistics.median(paired), 3)
                if nbytes:
                    entry["lazyblob_mb_s"] = round(nbytes / 1e3 / entry["lazyblob_ms_median"], 1)
                    entry["loop_mb_s"] = round(nbytes / 1e3 / entry["loop_ms_median"], 1)
            if pr and paired_probe:
                entry["probe_ms_median"] = statistics.median(pr.values())
                entry["probe_ratio_median"] = round(statistics.median(paired_probe), 3)
            wres["phases"][phase] = entry
        results["workloads"][w] = wres
    results["read_ahead_kb"] = {m: facts.get(f"read_ahead_kb.{m}", "?") for m in ("lazyblob", "loop")}

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "vm-read.json"), "w") as f:
        json.dump(results, f, indent=1)

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=os.path.dirname(__file__)).stdout.strip()
    except OSError:
        commit = "?"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    desc = {"file": f"cat of one {args.file_mib} MiB file (the host's shared libraries)",
            "tree": "tar of a whole real tree (59 Debian packages)" if args.file_mib >= 256
            else "tar of a whole small generated tree (bench/make_tree.py, 16 MiB)"}
    md = [
        "## 2. Real kernel (VM): cold read through lazyblobd vs a loop mount in RAM",
        "",
        f"Generated {now} at commit {commit} by `bench/vm/run.sh`: guest `{boot}`, "
        f"{args.mem} RAM, qemu TCG (every instruction emulated: absolute figures are far "
        "below native, compare the ratios). Same boot, back to back, the order of the two "
        f"modes alternating per repetition; {reps} repetition(s), medians.",
        "",
        "- **lazyblob**: `mount -t erofs none -o fsid=...` served by a fresh `lazyblobd` "
        + (f"(flags `{args.daemon_args}`) " if args.daemon_args else
           "(default flags: 8 workers, 1 MiB write-ahead doubling up to 8 MiB for a sequential "
           "reader) ") +
        "from a store in RAM" + (f" imported with `{args.import_args}`" if args.import_args
                                 else " (default import: CDC, 64 KiB average chunks, zstd 3)") +
        "; fresh cache dir "
        "on the VM's ext4 disk. *Cold* = first read: every byte is fetched by the daemon. "
        "*Warm* = the same read after `drop_caches`: served from the cache file, no daemon.",
        "- **probe**: the same image served raw by tests/e2e's minimal single-threaded C "
        "daemon (`ondemand_probe`: pread from the image + O_DIRECT pwrite per READ, no store, "
        "no decompression, no verification, no write-ahead), when measured: the cost of the "
        "on-demand path itself.",
        "- **loop**: the same EROFS image in RAM (initramfs tmpfs) on a loop device. *Cold* "
        "and *warm* are both after `drop_caches` (the image itself stays in RAM).",
        f"- Default readahead: {results['read_ahead_kb']['lazyblob']} KiB on the fscache "
        f"mount, {results['read_ahead_kb']['loop']} KiB on the loop device.",
        "",
        "| workload | phase | lazyblob | loop | **ratio** lazyblob/loop (per rep) | target "
        "| probe | probe/loop |",
        "|---|---|---:|---:|---|---|---:|---:|",
    ]
    for w in workloads:
        wres = results["workloads"][w]
        for phase in ("cold", "warm"):
            e = wres["phases"][phase]
            if "ratio_median" not in e:
                md.append(f"| {w} | {phase} | - | - | missing | | | |")
                continue
            speed = lambda k: f" ({e[k]} MB/s)" if k in e else ""
            target = f"<= {TARGET_COLD}: {'met' if e['ratio_median'] <= TARGET_COLD else 'NOT met'}" \
                if phase == "cold" else ""
            md.append(
                f"| {w}: {desc[w]}, {wres['bytes'] / 2**20:.0f} MiB | {phase} | "
                f"{e['lazyblob_ms_median'] / 1000:.2f} s{speed('lazyblob_mb_s')} | "
                f"{e['loop_ms_median'] / 1000:.2f} s{speed('loop_mb_s')} | "
                f"**{e['ratio_median']:.2f}** ({', '.join(str(x) for x in e['ratio_per_rep'])}) | "
                f"{target} | "
                + (f"{e['probe_ms_median'] / 1000:.2f} s | {e['probe_ratio_median']:.2f} |"
                   if "probe_ratio_median" in e else "- | - |"))
    md += ["", "READs the daemon served per cold read: " + ", ".join(
        f"{w} {results['workloads'][w]['reads_per_rep']}" for w in workloads) + ".", ""]
    if any(results["workloads"][w]["stage_ms_median"] for w in workloads):
        md += ["Daemon worker time by stage during the cold read (`lazyblob_stage_seconds_total`, "
               "summed over worker threads, median of the repetitions):", "",
               "| workload | " + " | ".join(STAGES) + " | total |",
               "|---|" + "---:|" * (len(STAGES) + 1)]
        for w in workloads:
            st = results["workloads"][w]["stage_ms_median"]
            total = sum(st.values()) or 1
            md.append(f"| {w} | " + " | ".join(
                f"{st.get(k, 0) / 1000:.2f} s ({100 * st.get(k, 0) / total:.0f}%)" for k in STAGES)
                + f" | {total / 1000:.2f} s |")
        md.append("")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 3.5))
        labels, values = [], []
        for w in workloads:
            for phase in ("cold", "warm"):
                e = results["workloads"][w]["phases"][phase]
                labels.append(f"{w}\n{phase}")
                values.append(e.get("ratio_median", 0))
        bars = ax.bar(labels, values, color=["#c0504d", "#4f81bd"] * 2)
        ax.axhline(TARGET_COLD, color="k", linestyle="--", linewidth=1, label="cold target 1.3")
        ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
        for b, v in zip(bars, values):
            ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.2f}", ha="center", va="bottom")
        ax.set_ylabel("time lazyblob / loop (median)")
        ax.set_title("Real kernel (VM): read time ratio to a loop mount in RAM")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(args.out_dir, "vm-read.png"), dpi=100)
        md += ["![cold-read ratio](vm-read.png)", ""]
    except ImportError:
        md += ["(no matplotlib: plot skipped)", ""]

    with open(os.path.join(args.out_dir, "vm-read.md"), "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
