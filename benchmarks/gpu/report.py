#!/usr/bin/env python3
"""Joins bench_gpu's JSON (ganinv Cuda backend) with pytorch_baseline.py's JSON (same GPU, same
job), prints the comparison table (markdown) and writes the combined JSON.

For each case and precision: ganinv's time (modconv: the faster style variant, both listed;
synthesis: CUDA-graph replay, eager in brackets), PyTorch's best variant, TFLOP/s, peak memory,
and the speed-up PyTorch ms / ganinv ms. Also the BF16 modconv rate as a share of the measured
dense BF16 GEMM rate.

  report.py ganinv.json torch.json [--out combined.json]
"""
import argparse
import json


def best(rows):
    return min(rows, key=lambda r: r["ms"]) if rows else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ganinv")
    ap.add_argument("torch")
    ap.add_argument("--out", default="bench_combined.json")
    a = ap.parse_args()
    G = json.load(open(a.ganinv))
    T = json.load(open(a.torch))
    keys = []
    for r in G["rows"]:
        k = (r["kind"], r["name"], r["precision"])
        if k not in keys:
            keys.append(k)
    table, combined = [], []
    for kind, name, prec in keys:
        g = [r for r in G["rows"] if (r["kind"], r["name"], r["precision"]) == (kind, name, prec)]
        t = [r for r in T["rows"] if (r["kind"], r["name"], r["precision"]) == (kind, name, prec)]
        gb, tb = best(g), best(t)
        speed = tb["ms"] / gb["ms"] if tb else float("nan")
        variants = ", ".join(f"{r['variant']} {r['ms']:.3f}" for r in g) if kind == "modconv" else \
            f"eager {gb['ms_eager']:.3f}"
        tvars = ", ".join(f"{r['variant']} {r['ms']:.3f}" for r in t)
        table.append([name, prec, f"{gb['ms']:.3f}", f"{gb['tflops']:.1f}", f"{gb['peak_mib']:.0f}",
                      f"{tb['ms']:.3f}" if tb else "-", f"{tb['tflops']:.1f}" if tb else "-",
                      f"{tb['peak_mib']:.0f}" if tb else "-", f"{speed:.2f}x", f"{gb['variant']} ({variants})",
                      tvars])
        combined.append(dict(kind=kind, name=name, precision=prec, ganinv=g, torch=t, speedup=speed))
    hdr = ["case", "prec", "ganinv ms", "TFLOP/s", "peak MiB", "torch ms", "TFLOP/s", "peak MiB", "speed-up",
           "ganinv variant (all ms)", "torch variants (ms)"]
    w = [max(len(str(x[i])) for x in table + [hdr]) for i in range(len(hdr))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(cells)) + " |"
    print(f"ganinv {G.get('date')} on {G.get('device')}; torch {T.get('torch')} on {T.get('device')}")
    print(line(hdr))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for row in table:
        print(line(row))
    gemm = {r["precision"]: r for r in T["rows"] if r["kind"] == "gemm"}
    for prec, gr in gemm.items():
        print(f"dense {prec} GEMM ({gr['name']}, torch.matmul): {gr['tflops']:.1f} TFLOP/s")
    bf = best([r for r in G["rows"] if r["name"] == "modconv512_3x3_256x256_b8_fwd" and r["precision"] == "bf16"])
    if bf and "bf16" in gemm:
        share = bf["tflops"] / gemm["bf16"]["tflops"]
        print(f"BF16 modconv 256x256 batch 8 fwd: {bf['tflops']:.1f} TFLOP/s = {100 * share:.1f}% of dense BF16 GEMM "
              f"(target > 50%)")
    for prec in ["fp32", "tf32"]:
        c = [x for x in combined if x["name"] == "synthesis1024_b1_fwdbwd" and x["precision"] == prec]
        if c:
            print(f"1024 synthesis fwd+bwd batch 1 {prec}: {c[0]['speedup']:.2f}x PyTorch (target >= 5x)")
    json.dump(dict(ganinv=G, torch=T, combined=combined), open(a.out, "w"), indent=1)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
