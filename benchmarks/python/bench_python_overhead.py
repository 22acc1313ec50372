#!/usr/bin/env python3
"""Per-call overhead of the Python bindings: g.synthesis from Python vs the same C++ call timed
in C++ (Generator._time_synthesis), batch 1 and 8 on the demo model; and one inversion's time
from Python vs the `ganinv invert` tool when --cli is given. Prints a Markdown table.

    python benchmarks/python/bench_python_overhead.py --model models/fmnist32.safetensors \
        [--cli build/examples/ganinv --image examples/images/fmnist_test_0000.png]
"""

import argparse
import re
import statistics
import subprocess
import tempfile
import time

import numpy as np

import ganinv


def python_seconds_per_call(g, ws, repeats):
    start = time.perf_counter()
    for _ in range(repeats):
        g.synthesis(ws)
    return (time.perf_counter() - start) / repeats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="the median of this many rounds is reported")
    parser.add_argument("--cli", help="the ganinv tool, for the inversion comparison")
    parser.add_argument("--image", help="target image of the inversion comparison")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()

    g = ganinv.Generator.load(args.model)
    print("| call | batch | C++ (us/call) | Python (us/call) | added (us/call) |")
    print("|---|---|---|---|---|")
    for batch in (1, 8):
        ws = g.mapping(g.seed_z(0, count=batch))
        g.synthesis(ws)  # warm-up: first-touch allocations, OpenMP threads
        cpp, py = [], []
        for _ in range(args.rounds):  # interleaved, so that load changes hit both alike
            cpp.append(g._time_synthesis(ws, args.repeats))
            py.append(python_seconds_per_call(g, ws, args.repeats))
        c, p = statistics.median(cpp) * 1e6, statistics.median(py) * 1e6
        print(f"| g.synthesis | {batch} | {c:.1f} | {p:.1f} | {p - c:.1f} |")

    if args.cli and args.image:
        targets = ganinv.load_image(args.image)[None]
        res = ganinv.invert(g, targets, steps=args.steps, seed=0, progress=False)
        with tempfile.TemporaryDirectory() as out:
            run = subprocess.run([args.cli, "invert", "--model", args.model, "--image", args.image, "--out", out,
                                  "--steps", str(args.steps), "--seed", "0"], check=True, capture_output=True, text=True)
            summary = open(f"{out}/summary.md").read()
        match = re.search(r"\|\s*([0-9.]+)\s*s\s*\|", summary) or re.search(r"([0-9.]+) s", summary)
        cli_seconds = float(match.group(1)) if match else float("nan")
        print(f"\ninversion, {args.steps} steps, 1 image: Python {res.seconds:.2f} s (optimisation), "
              f"ganinv invert {cli_seconds:.2f} s (summary's time column)")


if __name__ == "__main__":
    main()
