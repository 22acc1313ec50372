#!/usr/bin/env python3
"""PyTorch baseline of benchmarks/cpu/bench_losses.cpp: the same loss computations, same sizes
and batches, same weights, timed the same way (target features computed once, then
forward = per-image distances, forward+backward = distances + gradient w.r.t. pred).

    python3 benchmarks/gpu/bench_losses_torch.py [--device cuda|cpu] [--quick] [--json OUT.json]
                                                 [--tf32] [--reps N]

- lpips-vgg:       LPIPS-VGG v0.1 at 256x256; trunk = the fixture's hash-rule VGG16 (same cost as
                   the pretrained one), lin weights = the real LPIPS v0.1 weights
                   (tests/data/lpips/lpips_vgg_weights.safetensors).
- vgg-perceptual:  Image2StyleGAN's loss at 256x256: MSE of relu1_1, relu1_2, relu3_2, relu4_2
                   after [-1, 1] -> ImageNet normalisation.
- identity:        1 - cos of the face-api dlib ResNet descriptors at 150x150
                   (tests/data/face_api/face_recognition.safetensors).
float32 throughout; TF32 is off unless --tf32 (ganinv never uses reduced precision silently).
The models are tools/torch_loss_models.py (written for ganinv, checked against the official
LPIPS fixture and the package's descriptors by tools/tests/test_loss_converters.py and
tools/make_identity_grad_fixture.py). Needs numpy and torch.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import torch_loss_models as tm  # noqa: E402

DATA = os.path.join(REPO, "tests", "data")


class VggPerceptual(torch.nn.Module):
    """Sum over relu1_1, relu1_2, relu3_2, relu4_2 of the per-layer mean squared difference."""
    TAPS = (0, 1, 5, 8)

    def __init__(self, trunk):
        super().__init__()
        self.w = torch.nn.ParameterList([torch.nn.Parameter(w, requires_grad=False) for w, _ in trunk])
        self.b = torch.nn.ParameterList([torch.nn.Parameter(b, requires_grad=False) for _, b in trunk])
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def features(self, x):
        x = ((x + 1) / 2 - self.mean) / self.std
        out = []
        for l in range(self.TAPS[-1] + 1):
            if tm.VGG_POOL_BEFORE[l]:
                x = F.max_pool2d(x, 2, 2)
            x = F.relu(F.conv2d(x, self.w[l], self.b[l], padding=1))
            if l in self.TAPS:
                out.append(x)
        return out

    def forward(self, pred, target_feats):
        d = 0
        for a, b in zip(self.features(pred), target_feats):
            d = d + (a - b).square().mean(dim=(1, 2, 3))
        return d


def timed(fn, device, reps, warmup=2):
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(t)


def images(n, size, seed, device):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, size, size, generator=g) * 1.8 - 0.9).to(device)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="64x64 VGG inputs, 1 repetition")
    ap.add_argument("--json", default="bench_losses_torch.json")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmuls/convolutions (off by default)")
    ap.add_argument("--reps", type=int, default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = True
    reps = args.reps or (1 if args.quick else 10)
    size = 64 if args.quick else 256

    w, _ = tm.read_safetensors(os.path.join(DATA, "lpips", "lpips_vgg_weights.safetensors"))
    trunk = tm.vgg16_hash_rule()
    lpips = tm.LpipsVgg(trunk, [torch.from_numpy(w[f"lin{k}.model.1.weight"]) for k in range(5)]).to(device).eval()
    vgg = VggPerceptual(trunk).to(device).eval()
    face = tm.FaceResNet(os.path.join(DATA, "face_api", "face_recognition.safetensors")).to(device).eval()

    def lpips_case(n):
        pred, target = images(n, size, 1, device), images(n, size, 2, device)
        with torch.no_grad():
            tf = [tm.LpipsVgg.normalize(f) for f in lpips.features(target)]
        def fwd():
            with torch.no_grad():
                lpips(pred, None, b_feats=tf)
        def fwdbwd():
            p = pred.detach().requires_grad_(True)
            lpips(p, None, b_feats=tf).sum().backward()
        return fwd, fwdbwd

    def vgg_case(n):
        pred, target = images(n, size, 1, device), images(n, size, 2, device)
        with torch.no_grad():
            tf = vgg.features(target)
        def fwd():
            with torch.no_grad():
                vgg(pred, tf)
        def fwdbwd():
            p = pred.detach().requires_grad_(True)
            vgg(p, tf).sum().backward()
        return fwd, fwdbwd

    def identity_case(n):
        pred, target = images(n, 150, 1, device), images(n, 150, 2, device)
        with torch.no_grad():
            td = face((target + 1) * 127.5)
        def fwd():
            with torch.no_grad():
                tm.identity_loss(face, pred, td)
        def fwdbwd():
            p = pred.detach().requires_grad_(True)
            tm.identity_loss(face, p, td).sum().backward()
        return fwd, fwdbwd

    rows = []
    for n in (1, 8):
        for name, make, sz in (("lpips-vgg (hash-rule trunk)", lpips_case, size),
                               ("vgg-perceptual (hash-rule trunk)", vgg_case, size),
                               ("identity (face-api weights)", identity_case, 150)):
            fwd, fwdbwd = make(n)
            f = timed(fwd, device, reps)
            fb = timed(fwdbwd, device, reps)
            rows.append({"loss": name, "size": sz, "batch": n, "forward_ms_per_image": f / n,
                         "forward_backward_ms_per_image": fb / n, "forward_backward_images_per_s": 1000.0 * n / fb})
            print(".", end="", flush=True)
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"\nPyTorch {torch.__version__} on {dev_name} ({args.device}, float32, TF32 {'on' if args.tf32 else 'off'}), "
          "target features cached")
    hdr = ["loss", "size", "batch", "fwd ms/img", "fwd+bwd ms/img", "fwd+bwd img/s"]
    cells = [[r["loss"], f"{r['size']}x{r['size']}", str(r["batch"]), f"{r['forward_ms_per_image']:.2f}",
              f"{r['forward_backward_ms_per_image']:.2f}", f"{r['forward_backward_images_per_s']:.1f}"] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(hdr)]
    line = lambda c: "| " + " | ".join(x.ljust(widths[i]) for i, x in enumerate(c)) + " |"
    print(line(hdr))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells:
        print(line(c))
    with open(args.json, "w") as f:
        json.dump({"benchmark": "losses_torch", "date": time.strftime("%Y-%m-%d", time.gmtime()),
                   "device": dev_name, "torch": torch.__version__, "tf32": args.tf32, "rows": rows}, f, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
