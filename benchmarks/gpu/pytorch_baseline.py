#!/usr/bin/env python3
"""PyTorch baseline for benchmarks/gpu/bench_gpu: the same modulated convs and StyleGAN2
synthesis networks in plain PyTorch (eager, cuDNN), run on the same GPU in the same job.

Modulated conv, two ways people write it:
  grouped  - per-sample weights w * s * d, one grouped conv over the batch (the official
             'fused_modconv' path used at inference);
  scaled   - x * s, one shared-weight conv, * d afterwards (the official non-fused path).
Synthesis: 'skip' StyleGAN2 with grouped modconv, conv_transpose2d + FIR for up-sampling,
upfirdn2d-reference up-sampling of the skip image, const noise, bias + lrelu * sqrt(2).
Precision: fp32 (TF32 off in cuDNN and cuBLAS), tf32 (on), bf16 (autocast). Also measures the
dense GEMM rate (8192^3) of each precision, the ceiling the BF16 target is stated against.

  pytorch_baseline.py [--out FILE.json] [--precisions fp32,tf32,bf16] [--quick] [--device cpu]
"""
import argparse
import datetime
import json
import math

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def set_precision(prec):
    allow = prec == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = allow
    torch.backends.cudnn.allow_tf32 = allow
    torch.backends.cudnn.benchmark = True


def autocast(prec, device):
    return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=prec == "bf16")


def timed(fn, warmup, reps, device):
    import time
    for _ in range(warmup):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        if device == "cuda":
            a = torch.cuda.Event(enable_timing=True)
            b = torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            ts.append(a.elapsed_time(b))
        else:
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return ts[len(ts) // 2], ts[0]


# ------------------------------------------------------------------ modulated conv
def modconv_grouped(x, w, s, demod=True, padding=1):
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    wm = w[None] * s[:, None, :, None, None]
    if demod:
        d = (wm.square().sum([2, 3, 4]) + 1e-8).rsqrt()
        wm = wm * d[:, :, None, None, None]
    y = F.conv2d(x.reshape(1, n * c, h, wd), wm.reshape(n * o, c, k, k), padding=padding, groups=n)
    return y.reshape(n, o, y.shape[2], y.shape[3])


def modconv_scaled(x, w, s, demod=True, padding=1):
    y = F.conv2d(x * s[:, :, None, None], w, padding=padding)
    if demod:
        d = ((w.square().sum([2, 3])[None] * s.square()[:, None, :]).sum(2) + 1e-8).rsqrt()
        y = y * d[:, :, None, None]
    return y


def fir(x, f, pad, gain):
    """upfirdn2d with up = down = 1: pad, then depthwise conv with the (symmetric) filter."""
    c = x.shape[1]
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    k = (f * gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1).to(x.dtype)
    return F.conv2d(x, k, groups=c)


def upsample2d(x, f):
    """upfirdn2d(x, f, up=2, pad=(2, 1), gain=4): zero insertion, pad, FIR."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, 1, 0, 0, 0, 1]).reshape(n, c, 2 * h, 2 * w)
    return fir(x, f, (2, 1), 4.0)


def modconv_up2(x, w, s, f):
    """Official up-sampling modconv: grouped stride-2 transposed conv, then the FIR (gain 4)."""
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    wm = w[None] * s[:, None, :, None, None]
    d = (wm.square().sum([2, 3, 4]) + 1e-8).rsqrt()
    wm = wm * d[:, :, None, None, None]
    wt = wm.transpose(1, 2).reshape(n * c, o, k, k)
    y = F.conv_transpose2d(x.reshape(1, n * c, h, wd), wt, stride=2, groups=n)
    y = fir(y, f, (1, 1), 4.0)
    return y.reshape(n, o, y.shape[2], y.shape[3])


# ------------------------------------------------------------------ synthesis
def make_synthesis(res, channel_base, channel_max, w_dim, img_ch, device):
    g = torch.Generator(device="cpu").manual_seed(1)

    def randn(*shape):
        return torch.randn(*shape, generator=g).to(device)

    ch = lambda r: min(channel_base // r, channel_max)
    layers, widx, r = [], 0, 4
    while r <= res:
        specs = [("conv1", ch(4), ch(4), 3, 1, False)] if r == 4 else [
            ("conv0", ch(r // 2), ch(r), 3, 2, False), ("conv1", ch(r), ch(r), 3, 1, False)]
        specs.append(("torgb", ch(r), img_ch, 1, 1, True))
        for i, (name, cin, cout, k, up, torgb) in enumerate(specs):
            layers.append(dict(res=r, name=name, cin=cin, cout=cout, k=k, up=up, torgb=torgb,
                               w_index=widx + i, weight=randn(cout, cin, k, k), bias=torch.zeros(cout, device=device),
                               aff_w=randn(cin, w_dim), aff_b=torch.ones(cin, device=device),
                               noise=randn(r, r), strength=torch.zeros((), device=device)))
        widx += 1 if r == 4 else 2
        r *= 2
    return dict(const=randn(ch(4), 4, 4), layers=layers, filter=torch.tensor([1., 3., 3., 1.], device=device),
                w_dim=w_dim, num_ws=widx + 1)


def synthesis(P, ws, noises=None):
    """noises: None (each layer's constant map) or one [N or 1, 1, r, r] tensor per conv layer."""
    f1 = P["filter"]
    f = torch.outer(f1, f1) / f1.sum() ** 2
    n = ws.shape[0]
    x = P["const"][None].expand(n, -1, -1, -1)
    img = None
    conv_index = 0
    for L in P["layers"]:
        s = F.linear(ws[:, L["w_index"]], L["aff_w"] * (1.0 / math.sqrt(P["w_dim"])), L["aff_b"])
        if L["torgb"]:
            s = s * (1.0 / math.sqrt(L["cin"]))
            y = modconv_grouped(x, L["weight"], s, demod=False, padding=0) + L["bias"][None, :, None, None]
            img = y if img is None else upsample2d(img, f.to(y.dtype)) + y
            continue
        if L["up"] == 2:
            y = modconv_up2(x, L["weight"], s, f)
        else:
            y = modconv_grouped(x, L["weight"], s)
        noise = L["noise"] if noises is None else noises[conv_index]
        conv_index += 1
        y = y + noise * L["strength"]
        x = F.leaky_relu(y + L["bias"][None, :, None, None], 0.2) * SQRT2
    return img


def synthesis_flops(P, n):
    fl = 0.0
    for L in P["layers"]:
        px = (L["res"] // L["up"]) ** 2
        fl += 2.0 * n * L["cout"] * L["cin"] * L["k"] ** 2 * px
    return fl


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_torch.json")
    ap.add_argument("--precisions", default="fp32,tf32,bf16")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    dev = a.device
    rows = []
    mib = lambda b: b / 2 ** 20

    def peak_reset():
        if dev == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def peak():
        return mib(torch.cuda.max_memory_allocated()) if dev == "cuda" else 0.0

    small = dev != "cuda"  # CPU smoke test: tiny shapes, same code paths
    for prec in [p for p in ["fp32", "tf32", "bf16"] if p in a.precisions]:
        set_precision(prec)
        # dense GEMM ceiling
        m = 512 if small else 8192
        A = torch.randn(m, m, device=dev)
        B = torch.randn(m, m, device=dev)
        if prec == "bf16":
            A, B = A.bfloat16(), B.bfloat16()
        ms, mn = timed(lambda: A @ B, 3, 5 if a.quick else 20, dev)
        rows.append(dict(kind="gemm", name=f"gemm{m}", precision=prec, mode="fwd", variant="torch.matmul",
                         batch=1, res=m, ms=ms, ms_min=mn, gflop=2 * m ** 3 * 1e-9, tflops=2 * m ** 3 / ms * 1e-9,
                         peak_mib=0.0))
        print(f"gemm{m} {prec}: {ms:.3f} ms {rows[-1]['tflops']:.1f} TFLOP/s", flush=True)
        del A, B
        # single modulated convs
        C = 64 if small else 512
        for res in ([8] if small else [64, 256]):
            for n in [1, 8]:
                x0 = torch.randn(n, C, res, res, device=dev)
                w = torch.randn(C, C, 3, 3, device=dev)
                s0 = torch.randn(n, C, device=dev) * 0.5 + 1
                gy = torch.randn(n, C, res, res, device=dev)
                flops = 2.0 * n * C * C * 9 * res * res
                for variant, fn in [("grouped", modconv_grouped), ("scaled", modconv_scaled)]:
                    for bwd in [False, True]:
                        x = x0.clone().requires_grad_(bwd)
                        s = s0.clone().requires_grad_(bwd)

                        def run():
                            with autocast(prec, dev):
                                y = fn(x, w, s)
                            if bwd:
                                torch.autograd.grad(y, [x, s], gy.to(y.dtype))

                        if not bwd:
                            run_nograd = run

                            def run():
                                with torch.no_grad():
                                    run_nograd()
                        run()
                        peak_reset()
                        reps = 5 if a.quick else (15 if n * res * res >= 8 * 256 * 256 else 40)
                        ms, mn = timed(run, 2, reps, dev)
                        fl = flops * (2 if bwd else 1)
                        rows.append(dict(kind="modconv", name=f"modconv512_3x3_{res}x{res}_b{n}_{'fwdbwd' if bwd else 'fwd'}",
                                         precision=prec, mode="fwd+bwd" if bwd else "fwd", variant=variant, batch=n,
                                         res=res, ms=ms, ms_min=mn, gflop=fl * 1e-9, tflops=fl / ms * 1e-9,
                                         peak_mib=peak()))
                        print(f"{rows[-1]['name']} {prec} {variant}: {ms:.3f} ms {rows[-1]['tflops']:.1f} TFLOP/s",
                              flush=True)
        # synthesis
        for res, base in ([(16, 256)] if small else [(256, 16384), (1024, 32768)]):
            P = make_synthesis(res, base, 512, 512, 3, dev)
            for n in [1, 8]:
                ws0 = torch.randn(n, P["num_ws"], 512, device=dev)
                gimg = torch.randn(n, 3, res, res, device=dev)
                for bwd in [False, True]:
                    ws = ws0.clone().requires_grad_(bwd)

                    def run():
                        if bwd:
                            with autocast(prec, dev):
                                img = synthesis(P, ws)
                            torch.autograd.grad(img, [ws], gimg.to(img.dtype))
                        else:
                            with torch.no_grad(), autocast(prec, dev):
                                synthesis(P, ws)

                    run()
                    peak_reset()
                    reps = 3 if a.quick else (5 if res >= 1024 and n >= 8 else 10 if res >= 1024 else 20)
                    ms, mn = timed(run, 1, reps, dev)
                    fl = synthesis_flops(P, n) * (2 if bwd else 1)
                    rows.append(dict(kind="synthesis", name=f"synthesis{res}_b{n}_{'fwdbwd' if bwd else 'fwd'}",
                                     precision=prec, mode="fwd+bwd(ws)" if bwd else "fwd", variant="eager",
                                     batch=n, res=res, ms=ms, ms_min=mn, gflop=fl * 1e-9, tflops=fl / ms * 1e-9,
                                     peak_mib=peak()))
                    print(f"{rows[-1]['name']} {prec}: {ms:.3f} ms {rows[-1]['tflops']:.1f} TFLOP/s "
                          f"peak {rows[-1]['peak_mib']:.0f} MiB", flush=True)
            del P
            if dev == "cuda":
                torch.cuda.empty_cache()
    out = dict(benchmark="pytorch_baseline", date=datetime.date.today().isoformat(), torch=torch.__version__,
               device=torch.cuda.get_device_name(0) if dev == "cuda" else "cpu", rows=rows)
    with open(a.out, "w") as fh:
        json.dump(out, fh, indent=1)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
