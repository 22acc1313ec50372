#!/usr/bin/env python3
"""Per-call overhead of the Python bindings: g.synthesis from Python vs the library's synthesis
inside the same call, batch 1 and 8 on the demo model; and one inversion's time from Python vs
the `ganinv invert` tool (same options) when --cli is given. Prints Markdown tables.

    python benchmarks/python/bench_python_overhead.py --model models/fmnist32.safetensors \\
        [--cli build/examples/ganinv --image examples/images/fmnist_test_0000.png]

Each call is paired with its own C++ time (Generator._last_synthesis_seconds: the library's
synthesis, timed inside the binding), so the added time is measured call by call: the generator's
run-to-run noise, milliseconds on a loaded machine, cancels instead of swamping microseconds.
What remains is the binding's work: argument checks, GIL release and re-acquisition, the
generator's lock, and handing the result to NumPy.

With --device cuda the generator runs on the GPU and ws is a PyTorch CUDA tensor: the C++ time is
the library's call (queueing the work; the GPU runs it asynchronously and the benchmark waits for
it outside the timed call), the result a DLPack array. The added time is then the binding's cost
around a GPU call, on the same machine as the CPU rows.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import ganinv


def paired_calls(g, ws, calls, wait=None):
    """(C++ seconds, Python seconds) of each of `calls` g.synthesis calls; `wait` (CUDA: the
    device's synchronize) runs after each call, outside the timer."""
    pairs = []
    for _ in range(calls):
        start = time.perf_counter()
        images = g.synthesis(ws)
        python = time.perf_counter() - start
        pairs.append((g._last_synthesis_seconds(), python))
        if wait:
            wait()
        del images  # freed outside the timed call
    return pairs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--calls", type=int, default=200, help="g.synthesis calls per batch size (0: none)")
    parser.add_argument("--batches", default="1,8", help="batch sizes, comma-separated")
    parser.add_argument("--cli", help="the ganinv tool, for the inversion comparison")
    parser.add_argument("--image", help="target image of the inversion comparison")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2, help="inversions on each side, alternated")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (ws as a PyTorch CUDA tensor)")
    args = parser.parse_args()

    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}, {os.cpu_count()} CPUs\n")
    g = ganinv.Generator.load(args.model, device=args.device)
    wait = None
    if args.device != "cpu":
        import torch

        wait = torch.cuda.synchronize
        print(f"device: {g.device_name}\n")
    if args.calls > 0:
        print("| call | batch | calls | C++ (us/call, median) | Python (us/call, median) | added (us/call, median) "
              "| added (us/call, 90th percentile) |")
        print("|---|---|---|---|---|---|---|")
        for batch in (int(b) for b in args.batches.split(",")):
            ws = g.mapping(g.seed_z(0, count=batch))
            if wait:
                ws = torch.from_numpy(ws).cuda()
            paired_calls(g, ws, 3, wait)  # warm-up: first-touch allocations, OpenMP threads
            pairs = paired_calls(g, ws, args.calls, wait)
            added = sorted(p - c for c, p in pairs)
            cpp = statistics.median(c for c, _ in pairs) * 1e6
            py = statistics.median(p for _, p in pairs) * 1e6
            p90 = added[min(len(added) - 1, int(0.9 * len(added)))] * 1e6
            print(f"| g.synthesis ({args.device}) | {batch} | {len(pairs)} | {cpp:.0f} | {py:.0f} | {statistics.median(added) * 1e6:.1f} "
                  f"| {p90:.1f} |")

    if args.cli and args.image:
        # Same options on both sides: the defaults (W+, MSE, Adam with the projector's schedule),
        # seed 0; alternated, so that a change of the machine's load hits both alike.
        targets = ganinv.load_image(args.image)[None]
        print(f"\n| inversion ({args.steps} steps, 1 image, W+ Adam) | round | optimisation (s) | wall time (s) |")
        print("|---|---|---|---|")
        for r in range(1, args.rounds + 1):
            with tempfile.TemporaryDirectory() as out:
                start = time.perf_counter()
                subprocess.run([args.cli, "invert", "--model", args.model, "--image", args.image, "--out", out,
                                "--steps", str(args.steps), "--seed", "0", "--device", args.device],
                               check=True, capture_output=True, text=True)
                cli_wall = time.perf_counter() - start
                with open(os.path.join(out, "summary.json")) as f:
                    cli_seconds = json.load(f)["images"][0]["batch_seconds"]
            start = time.perf_counter()
            res = ganinv.invert(g, targets, steps=args.steps, seed=0, progress=False)
            python_wall = time.perf_counter() - start
            print(f"| ganinv invert | {r} | {cli_seconds:.2f} | {cli_wall:.2f} (process: loads the model, writes outputs) |")
            print(f"| ganinv.invert | {r} | {res.seconds:.2f} | {python_wall:.2f} (the call) |")
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
