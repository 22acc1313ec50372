#!/usr/bin/env python3
"""Joins bench_gpu runs of two builds made in one device call (e.g. before and after a refactor):
per row (name, precision, engine) the best median time of each build over its rounds, and their
ratio. Rounds of the two builds are meant to alternate (before, after, before, after) so that a
drift of the machine shows in both.

Usage: compare_bench_gpu.py --before A1.json [A2.json ...] --after B1.json [B2.json ...]
                            [--out joined.json] [--labels BEFORE AFTER]
A file that does not end in .json is read as bench_gpu's printed table (its log): a run stopped
by a time limit has printed the rows it finished but not yet written its JSON. Rows are then keyed
by name, precision and the columns between them and the time; give the same kind of file on both sides.
Prints a Markdown table; rows present in only one build are listed below it.
"""
import argparse
import json
import re

LOG_ROW = re.compile(r"^(\S+)\s+(fp32|tf32|bf16)\s+(.*?)\s+([0-9.]+) ms")


def load_rows(paths):
    rows = {}
    for path in paths:
        if not path.endswith(".json"):
            with open(path) as f:
                for line in f:
                    m = LOG_ROW.match(line)
                    if m:
                        key = (m.group(1), m.group(2), " ".join(m.group(3).split()))
                        rows.setdefault(key, []).append(float(m.group(4)))
            continue
        with open(path) as f:
            data = json.load(f)
            data = data.get("ganinv", data)  # report.py's joined file keeps bench_gpu's output under "ganinv"
            for r in data["rows"]:
                key = (r["name"], r["precision"], r.get("engine", ""))
                rows.setdefault(key, []).append(r["ms"])
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", nargs="+", required=True)
    ap.add_argument("--after", nargs="+", required=True)
    ap.add_argument("--labels", nargs=2, default=["before", "after"])
    ap.add_argument("--out")
    a = ap.parse_args()
    before, after = load_rows(a.before), load_rows(a.after)
    joined = []
    lines = [f"| case | precision | engine | {a.labels[0]} ms (rounds) | {a.labels[1]} ms (rounds) | {a.labels[1]} / {a.labels[0]} |",
             "|---|---|---|---|---|---|"]
    for key in sorted(set(before) & set(after)):
        b, c = min(before[key]), min(after[key])
        joined.append({"name": key[0], "precision": key[1], "engine": key[2], "before_ms": before[key],
                       "after_ms": after[key], "ratio_best": c / b})
        fmt = lambda xs: ", ".join(f"{x:.3f}" for x in xs)
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {fmt(before[key])} | {fmt(after[key])} | {c / b:.3f} |")
    print("\n".join(lines))
    only = sorted(set(before) ^ set(after))
    if only:
        print("\nrows in one build only: " + "; ".join(f"{k[0]} {k[1]} {k[2]}" for k in only))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"labels": a.labels, "rows": joined,
                       "only_one_build": [list(k) for k in only]}, f, indent=1)


if __name__ == "__main__":
    main()
