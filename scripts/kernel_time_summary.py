#!/usr/bin/env python3
"""Adds up the kernel times of an Nsight Compute CSV by kernel name: what `ncu --metrics
gpu__time_duration.sum --csv` printed for a profiled range (bench_tune_gpu --breakdown brackets
one tuning evaluate with cudaProfilerStart/Stop). Prints a markdown table, largest first.

Usage: kernel_time_summary.py NCU.csv [--top N] [--json OUT.json]
"""
import csv
import json
import sys

UNITS = {"nsecond": 1e-6, "ns": 1e-6, "usecond": 1e-3, "us": 1e-3, "msecond": 1.0, "ms": 1.0, "second": 1e3, "s": 1e3}


def read_rows(path):
    with open(path, newline="") as f:
        lines = [line for line in f if not line.startswith("==")]  # ncu's own messages
    start = next((i for i, line in enumerate(lines) if '"Kernel Name"' in line), None)
    if start is None:
        sys.exit(f"kernel_time_summary: no CSV header with \"Kernel Name\" in {path}")
    return list(csv.DictReader(lines[start:]))


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    top, out_json = 40, None
    if "--top" in args:
        top = int(args[args.index("--top") + 1])
    if "--json" in args:
        out_json = args[args.index("--json") + 1]
    totals = {}
    for row in read_rows(args[0]):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        unit = row.get("Metric Unit", "nsecond")
        if unit not in UNITS:
            sys.exit(f"kernel_time_summary: unknown time unit '{unit}'")
        ms = float(row["Metric Value"].replace(",", "")) * UNITS[unit]
        name = row["Kernel Name"]
        count, total = totals.get(name, (0, 0.0))
        totals[name] = (count + 1, total + ms)
    if not totals:
        sys.exit("kernel_time_summary: no gpu__time_duration.sum values (was the range profiled?)")
    grand = sum(t for _, t in totals.values())
    ranked = sorted(totals.items(), key=lambda kv: -kv[1][1])
    print(f"{sum(c for c, _ in totals.values())} kernels, {grand:.3f} ms of kernel time (profiled one at a time)\n")
    print("| kernel | launches | ms | share |")
    print("|---|---|---|---|")
    for name, (count, total) in ranked[:top]:
        short = name if len(name) <= 110 else name[:107] + "..."
        print(f"| `{short}` | {count} | {total:.3f} | {100 * total / grand:.1f}% |")
    if len(ranked) > top:
        rest = sum(t for _, (_, t) in ranked[top:])
        print(f"| ({len(ranked) - top} other kernels) | | {rest:.3f} | {100 * rest / grand:.1f}% |")
    if out_json:
        with open(out_json, "w") as f:
            json.dump({"total_ms": grand, "kernels": [{"name": n, "launches": c, "ms": t} for n, (c, t) in ranked]}, f, indent=1)


if __name__ == "__main__":
    main()
