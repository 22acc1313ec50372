#!/usr/bin/env python3
"""PyTorch baseline of benchmarks/gpu/bench_invert_step_gpu: one step of the official StyleGAN2
projector's optimisation loop, written for ganinv in plain PyTorch (eager), on the same
generator architectures and batches, timed the same way (median of N steps after warm-up).

Objectives (the C++ benchmark runs the same two):
  w_noise - the official projector: one w per image broadcast to all layers, plus exploration
            noise; the per-layer noise maps are variables, penalised by the noise regulariser
            (squared autocorrelation at shift 1 over an average-pool pyramid, weight 1e5) and
            re-normalised to zero mean / unit variance after every Adam step;
  wplus   - one w per layer, noise maps held constant.
Loss: per-image MSE against the target (ganinv's benchmark uses its CUDA MSE; the official
projector's LPIPS is a separate cost, see bench_losses). Adam(lr 0.1, betas 0.9/0.999).
Synthesis is pytorch_baseline.synthesis (grouped modulated conv, transposed conv + FIR).

  projector_step_torch.py [--out FILE.json] [--quick] [--tf32]
"""
import argparse
import datetime
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_baseline as pb  # noqa: E402


def noise_regularizer(maps):
    reg = 0.0
    for v in maps:
        while True:
            reg = reg + (v * torch.roll(v, shifts=1, dims=3)).mean([1, 2, 3]).square()
            reg = reg + (v * torch.roll(v, shifts=1, dims=2)).mean([1, 2, 3]).square()
            if v.shape[2] <= 8:
                break
            v = F.avg_pool2d(v, kernel_size=2)
    return reg


def make_step(P, n, objective, device):
    torch.manual_seed(0)
    num_ws, w_dim = P["num_ws"], P["w_dim"]
    res = P["layers"][-1]["res"]
    img_ch = P["layers"][-1]["cout"]
    target = torch.rand(n, img_ch, res, res, device=device) * 2 - 1
    if objective == "w_noise":
        w_opt = torch.randn(n, 1, w_dim, device=device).requires_grad_(True)
        maps = [torch.randn(n, 1, L["res"], L["res"], device=device).requires_grad_(True)
                for L in P["layers"] if not L["torgb"]]
        params = [w_opt] + maps
    else:
        w_opt = torch.randn(n, num_ws, w_dim, device=device).requires_grad_(True)
        maps = None
        params = [w_opt]
    opt = torch.optim.Adam(params, betas=(0.9, 0.999), lr=0.1)
    w_std = 1.0

    def step():
        if objective == "w_noise":
            ws = (w_opt + torch.randn_like(w_opt) * 0.05 * w_std * 0.5).repeat(1, num_ws, 1)
        else:
            ws = w_opt
        img = pb.synthesis(P, ws, maps)
        loss = (img - target).square().mean([1, 2, 3]).sum()
        if maps is not None:
            loss = loss + noise_regularizer(maps).sum() * 1e5
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if maps is not None:
            with torch.no_grad():
                for buf in maps:
                    buf -= buf.mean(dim=[1, 2, 3], keepdim=True)
                    buf *= buf.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="projector_step_torch.json")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tf32", action="store_true")
    a = ap.parse_args()
    dev = "cuda"
    pb.set_precision("tf32" if a.tf32 else "fp32")
    configs = [("fmnist32 (demo)", 32, 4096, 128, 128, 1, [1, 8, 64]),
               ("256x256 random (cb 16384, cm 512)", 256, 16384, 512, 512, 3, [1, 8])]
    if not a.quick:
        configs.append(("1024x1024 random (cb 32768, cm 512)", 1024, 32768, 512, 512, 3, [1]))
    rows = []
    for name, res, base, cmax, w_dim, img_ch, batches in configs:
        P = pb.make_synthesis(res, base, cmax, w_dim, img_ch, dev)
        reps = 5 if res >= 512 else (10 if res > 64 else 30)
        for n in batches:
            for objective in ["w_noise", "wplus"]:
                step = make_step(P, n, objective, dev)
                ms, mn = pb.timed(step, 3, reps, dev)
                rows.append(dict(config=name, objective=objective, batch=n, resolution=res, ms_per_step=ms,
                                 ms_min=mn, ms_per_image_step=ms / n, device=torch.cuda.get_device_name(0),
                                 precision="tf32" if a.tf32 else "fp32"))
                print(f"{name} {objective} b{n}: {ms:.3f} ms/step", flush=True)
    with open(a.out, "w") as f:
        json.dump(dict(benchmark="projector_step_torch", date=datetime.datetime.utcnow().isoformat() + "Z",
                       torch=torch.__version__, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
