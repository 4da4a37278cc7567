#!/usr/bin/env python3
"""Charts for BENCHMARKS.md from bench/results/results.jsonl (medians over rounds).

usage: bench/plot.py RESULTS_DIR   -> RESULTS_DIR/{throughput,latency,memory}.png
"""
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import cases, load, med  # noqa: E402

COLORS = {"php-fpm": "#7a86b8", "corral": "#d9822b"}
SERVERS = ("php-fpm", "corral")


def throughput(rows, out):
    fig, ax = plt.subplots(figsize=(8, 4.8))
    series = [("fcgi", "keep=off", "FastCGI direct", "-o"),
              ("fcgi", "keep=on", "FastCGI direct, keep-conn", ":s"),
              ("nginx", "", "nginx + wrk", "--^")]
    for section, keep, label, style in series:
        for s in SERVERS:
            xs, ys = [], []
            for c in cases(rows, section):
                if keep and keep not in c:
                    continue
                conc = int(c.split()[0].split("=")[1])
                v = med(rows, section, c, s, "rps")
                if v is not None:
                    xs.append(conc)
                    ys.append(v)
            if xs:
                ax.plot(xs, ys, style, color=COLORS[s], label=f"{s}: {label}")
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 4, 16, 64])
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("concurrent connections")
    ax.set_ylabel("requests/s (median)")
    ax.set_ylim(bottom=0)
    ax.set_title("Hello world: throughput vs concurrency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def latency(rows, out):
    rate_cases = cases(rows, "rate")
    pcts = [("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99_9", "p99.9")]
    fig, axes = plt.subplots(1, max(1, len(rate_cases)), figsize=(5 * max(1, len(rate_cases)), 4.5),
                             squeeze=False)
    for ax, case in zip(axes[0], rate_cases):
        width = 0.38
        for i, s in enumerate(SERVERS):
            vals = [med(rows, "rate", case, s, "lat_ms." + k) or 0 for k, _ in pcts]
            xs = [j + (i - 0.5) * width for j in range(len(pcts))]
            bars = ax.bar(xs, vals, width, color=COLORS[s], label=s)
            for b, v in zip(bars, vals):
                ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, v), ha="center",
                            va="bottom", fontsize=7)
        ax.set_xticks(range(len(pcts)))
        ax.set_xticklabels([lbl for _, lbl in pcts])
        ax.set_yscale("log")
        ax.set_ylabel("latency, ms (log)")
        ax.set_title(f"FastCGI fixed rate: {case}", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def memory(rows, out):
    groups = [("master_pss", "master"), ("proto_pss", "prototype\n(corral)"),
              ("idle_worker_pss", "worker, idle"), ("busy_worker_pss", "worker,\nafter load"),
              ("idle_total_pss", "all processes,\nidle"), ("busy_total_pss", "all processes,\nafter load")]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.38
    for i, s in enumerate(SERVERS):
        vals = [(med(rows, "memory", "static", s, k) or 0) / 1024 for k, _ in groups]
        xs = [j + (i - 0.5) * width for j in range(len(groups))]
        bars = ax.bar(xs, vals, width, color=COLORS[s], label=s)
        for b, v in zip(bars, vals):
            if v:
                ax.annotate(f"{v:.1f}", (b.get_x() + b.get_width() / 2, v), ha="center",
                            va="bottom", fontsize=7)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g for _, g in groups], fontsize=8)
    ax.set_ylabel("PSS, MiB (median)")
    ax.set_title("Static pool: PSS per process")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)

    pools = None
    for r in rows:
        if r["section"] == "density":
            pools = r.get("pools")
    vals = [(med(rows, "density", "pools", s, "total_pss") or 0) / 1024 for s in SERVERS]
    bars = ax2.bar(SERVERS, vals, color=[COLORS[s] for s in SERVERS])
    for b, v in zip(bars, vals):
        ax2.annotate(f"{v:.1f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom",
                     fontsize=8)
    ax2.set_ylabel("PSS, MiB")
    ax2.set_title(f"{pools} idle ondemand pools:\ntotal PSS", fontsize=10)
    ax2.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    d = sys.argv[1]
    rows, _meta = load(d)
    throughput(rows, os.path.join(d, "throughput.png"))
    latency(rows, os.path.join(d, "latency.png"))
    memory(rows, os.path.join(d, "memory.png"))


if __name__ == "__main__":
    main()
