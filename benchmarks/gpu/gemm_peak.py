#!/usr/bin/env python3
"""Measured dense GEMM rate of this GPU per precision (PyTorch matmul, 8192^3, median of 20):
the denominator of the "share of the physical floor" in join_device_step.py.
  gemm_peak.py [--out FILE.json]"""
import argparse
import json

import torch


def rate(dtype, tf32):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    ts = []
    for _ in range(20):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        a @ b
        e.record()
        torch.cuda.synchronize()
        ts.append(s.elapsed_time(e))
    ts.sort()
    return 2.0 * n ** 3 / (ts[len(ts) // 2] * 1e-3) * 1e-12


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="gemm_peak.json")
    a = ap.parse_args()
    r = {"fp32": rate(torch.float32, False), "tf32": rate(torch.float32, True), "bf16": rate(torch.bfloat16, False),
         "gpu": torch.cuda.get_device_name()}
    print(json.dumps(r))
    with open(a.out, "w") as f:
        json.dump(r, f)


if __name__ == "__main__":
    main()
