#!/usr/bin/env python3
"""Convert a rosinality/stylegan2-pytorch checkpoint to ganinv safetensors.

    python3 tools/convert_rosinality.py IN.pt OUT.safetensors [--lr-mlp 0.01]

IN.pt is what `torch.load` reads from that project's training script (a dict
with 'g_ema' and more) or from its convert_weight.py (a dict with 'g_ema' and
'latent_avg'); a bare g_ema state dict is accepted too.  The output holds the
same network under NVIDIA stylegan2-ada-pytorch names and conventions (the
layout of tools/stylegan2_layout.py), float32, with the config in the metadata.

What changes on the way (the two projects compute the same function but store
it differently):
  * conv weights [1,O,I,k,k] -> [O,I,k,k].  rosinality multiplies the weight of
    every modulated conv by 1/sqrt(I*k*k) at run time; NVIDIA does not.  For the
    demodulated 3x3 convs the stored weight is multiplied by that factor, so the
    computation is identical (the factor would cancel in demodulation except
    against the 1e-8 epsilon; storing it keeps even that exact).  For ToRGB
    (no demodulation) NVIDIA applies 1/sqrt(I) to the styles itself, so the raw
    weight is stored.
  * noise inputs: noises.noise_{i} [1,1,r,r] -> noise_const [r,r];
    noise.weight [1] -> noise_strength [] (a scalar).
  * ToRGB bias [1,C,1,1] -> [C]; activate.bias -> bias; modulation -> affine.
  * the blur kernels become NVIDIA's resample_filter buffers (normalised, without
    rosinality's factor 4 for up-sampling, which NVIDIA applies as a gain).
  * w_avg = latent_avg when the checkpoint has it; otherwise the mean of
    mapping(z) over 10000 standard-normal z drawn with a fixed seed (a note is
    printed).
  * channel counts are expressed as NVIDIA's min(channel_base // res, channel_max);
    a channel list that no such pair reproduces is refused.
The mapping lr multiplier is not stored in rosinality checkpoints; its
Generator's default (lr_mlp = 0.01) is assumed unless --lr-mlp says otherwise.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stylegan2_layout import (ConversionError, channels_for, filter_buffer,  # noqa: E402
                              make_config, num_ws_for, write_generator)

W_AVG_SAMPLES = 10000
W_AVG_SEED = 0


# ----------------------------------------------------------------------------- loading

def load_checkpoint(path: str) -> Tuple[Dict[str, np.ndarray], Optional[np.ndarray]]:
    """Return (g_ema state dict as float32 numpy arrays, latent_avg or None)."""
    import torch  # only needed to read the .pt file

    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        ckpt = torch.load(path, map_location="cpu")
    except Exception:  # e.g. the training script's 'args' (argparse.Namespace)
        print("note: the checkpoint holds more than tensors (e.g. the training arguments); "
              "loading it with full unpickling, so only convert files you trust")
        ckpt = torch.load(path, map_location="cpu", weights_only=False)

    if not isinstance(ckpt, Mapping):
        raise ConversionError(f"{path}: expected a dict from torch.load, got {type(ckpt).__name__}")
    if "g_ema" in ckpt:
        sd, latent_avg = ckpt["g_ema"], ckpt.get("latent_avg")
    elif "style.1.weight" in ckpt:
        sd, latent_avg = ckpt, None
    else:
        raise ConversionError(
            f"{path}: no 'g_ema' state dict in the checkpoint (keys: "
            f"{', '.join(map(str, list(ckpt.keys())[:12]))})")
    if not isinstance(sd, Mapping):
        raise ConversionError(f"{path}: 'g_ema' is a {type(sd).__name__}, expected a state dict")

    def to_np(v):
        if hasattr(v, "detach"):
            v = v.detach().cpu().float().numpy()
        return np.asarray(v, dtype=np.float32)

    sd = OrderedDict((k, to_np(v)) for k, v in sd.items())
    if latent_avg is not None:
        latent_avg = to_np(latent_avg)
    return sd, latent_avg


# ----------------------------------------------------------------------------- inference

def solve_channels(channels: Dict[int, int]) -> Tuple[int, int]:
    """Find (channel_base, channel_max) with min(channel_base // res, channel_max) == channels[res].

    channel_max can always be taken as the largest channel count (any larger
    value that works also works when lowered to it).  Then each resolution
    bounds channel_base: an unsaturated one (c < channel_max) needs
    c*res <= base <= (c+1)*res - 1, a saturated one needs base >= channel_max*res.
    Among the bases in the resulting interval the smallest power of two is
    preferred (NVIDIA's configs use powers of two), else the lower bound.
    """
    cmax = max(channels.values())
    lo, hi = 1, None
    for res, c in sorted(channels.items()):
        if c == cmax:
            lo = max(lo, cmax * res)
        else:
            lo = max(lo, c * res)
            hi = (c + 1) * res - 1 if hi is None else min(hi, (c + 1) * res - 1)
    listing = ", ".join(f"{r}: {c}" for r, c in sorted(channels.items()))
    if hi is not None and lo > hi:
        raise ConversionError(
            f"the channel counts {{{listing}}} cannot be written as NVIDIA's "
            "min(channel_base // res, channel_max) for any channel_base, channel_max "
            "(e.g. rosinality channel_multiplier > 2 makes 64px wider than 32px); not supported")
    base = 1 << (lo - 1).bit_length()  # smallest power of two >= lo
    if hi is not None and base > hi:
        base = lo
    size = max(channels)
    got = channels_for(base, cmax, size)
    if got != dict(channels):  # the derivation above guarantees this; keep the check honest
        raise ConversionError(f"internal error: channel_base {base}, channel_max {cmax} give {got}, "
                              f"not {{{listing}}}")
    return base, cmax


def kernel_to_filter(kernel: np.ndarray, gain: float, what: str):
    """Turn a rosinality 2-D blur kernel (normalised, times `gain`) into a 1-D filter list."""
    k2 = np.asarray(kernel, dtype=np.float64) / gain
    if k2.ndim != 2 or k2.shape[0] != k2.shape[1]:
        raise ConversionError(f"{what}: blur kernel of shape {list(k2.shape)} is not square 2-D")
    if not abs(k2.sum() - 1.0) < 1e-5:
        raise ConversionError(f"{what}: blur kernel sums to {k2.sum() * gain:.6g}, expected {gain:g} "
                              "(a normalised kernel times the up-sampling gain)")
    row = k2.sum(axis=1)  # = k / sum(k) for a separable kernel outer(k, k) / sum(k)^2
    if not np.allclose(np.outer(row, row), k2, rtol=1e-5, atol=1e-7):
        raise ConversionError(f"{what}: the blur kernel is not separable (not outer(k, k)); "
                              "ganinv only supports a 1-D resampling filter")
    nz = np.abs(row[np.abs(row) > 1e-12])
    taps = row / nz.min()
    if np.allclose(taps, np.round(taps), atol=1e-4):
        return [int(v) for v in np.round(taps)]
    return [float(v) for v in row]


def infer_structure(sd: Mapping[str, np.ndarray]):
    """Return n_mlp, style_dim, size, channels {res: c}, img_channels, blur filter list."""
    for key in ("input.input", "conv1.conv.weight", "to_rgb1.conv.weight", "style.1.weight"):
        if key not in sd:
            raise ConversionError(f"not a rosinality StyleGAN2 generator: tensor '{key}' is missing")
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in sd:
        n_mlp += 1
    style_dim = sd["style.1.weight"].shape[1]
    n_rgb = 0
    while f"to_rgbs.{n_rgb}.conv.weight" in sd:
        n_rgb += 1
    size = 2 ** (n_rgb + 2)
    channels = {4: int(sd["input.input"].shape[1])}
    for k in range(n_rgb):
        key = f"convs.{2 * k}.conv.weight"
        if key not in sd:
            raise ConversionError(f"not a rosinality StyleGAN2 generator: '{key}' is missing")
        channels[8 << k] = int(sd[key].shape[1])
    img_channels = int(sd["to_rgb1.conv.weight"].shape[1])

    # The resampling filter: every blur/upsample kernel must be the same.
    filt, seen = None, None
    for key in sorted(k for k in sd if k.endswith(".blur.kernel") or k.endswith(".upsample.kernel")):
        f = kernel_to_filter(sd[key], 4.0, key)  # both up-sampling kernels carry factor**2 = 4
        if filt is None:
            filt, seen = f, key
        elif f != filt:
            raise ConversionError(f"blur kernels differ: {seen} gives {filt}, {key} gives {f}")
    if filt is None:
        filt = [1, 3, 3, 1]
        print("note: a 4x4 generator has no blur kernel; assuming the default [1, 3, 3, 1]")
    return n_mlp, style_dim, size, channels, img_channels, filt


def mapping_mean(sd, n_mlp: int, lr_mlp: float, samples: int = W_AVG_SAMPLES,
                 seed: int = W_AVG_SEED) -> np.ndarray:
    """Mean of rosinality's mapping network over standard-normal z (float64 numpy)."""
    dim = sd["style.1.weight"].shape[1]
    x = np.random.default_rng(seed).standard_normal((samples, dim))
    x = x / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + 1e-8)  # pixel norm
    for i in range(1, n_mlp + 1):
        w = sd[f"style.{i}.weight"].astype(np.float64)
        b = sd[f"style.{i}.bias"].astype(np.float64)
        x = x @ (w * (lr_mlp / math.sqrt(w.shape[1]))).T + b * lr_mlp
        x = np.where(x >= 0, x, 0.2 * x) * math.sqrt(2.0)
    return x.mean(axis=0).astype(np.float32)


# ----------------------------------------------------------------------------- mapping

def convert_state_dict(sd: Mapping[str, np.ndarray], latent_avg: Optional[np.ndarray],
                       lr_mlp: float = 0.01, source: str = "rosinality/stylegan2-pytorch"):
    """rosinality g_ema state dict -> (NVIDIA-named float32 tensors, config)."""
    n_mlp, style_dim, size, channels, img_channels, filt = infer_structure(sd)
    base, cmax = solve_channels(channels)
    cfg = make_config(
        architecture="skip", z_dim=int(style_dim), c_dim=0, w_dim=int(style_dim),
        img_resolution=size, img_channels=img_channels, mapping_layers=n_mlp,
        channel_base=base, channel_max=cmax, num_fp16_res=0, conv_clamp=None,
        num_ws=num_ws_for(size), lr_multiplier=lr_mlp, w_avg_beta=0.995,
        resample_filter=filt, source=source)

    used = set()
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()

    def take(key: str) -> np.ndarray:
        if key not in sd:
            raise ConversionError(f"rosinality state dict: tensor '{key}' is missing")
        used.add(key)
        return sd[key]

    fbuf = filter_buffer(filt)

    def styled_conv(src: str, dst: str, noise_idx: int) -> None:
        w = take(src + ".conv.weight")
        if w.ndim != 5 or w.shape[0] != 1:
            raise ConversionError(f"'{src}.conv.weight' has shape {list(w.shape)}, expected [1,O,I,k,k]")
        _, _, cin, k, _ = w.shape
        scale = np.float32(1.0 / math.sqrt(cin * k * k))
        out[dst + ".weight"] = w[0] * scale
        out[dst + ".noise_strength"] = take(src + ".noise.weight").reshape([])
        out[dst + ".bias"] = take(src + ".activate.bias").reshape(-1)
        out[dst + ".resample_filter"] = fbuf
        noise = take(f"noises.noise_{noise_idx}")
        out[dst + ".noise_const"] = noise.reshape(noise.shape[-2:])
        out[dst + ".affine.weight"] = take(src + ".conv.modulation.weight")
        out[dst + ".affine.bias"] = take(src + ".conv.modulation.bias")
        if src + ".conv.blur.kernel" in sd:
            used.add(src + ".conv.blur.kernel")  # checked in infer_structure

    def to_rgb(src: str, dst: str) -> None:
        w = take(src + ".conv.weight")
        if w.ndim != 5 or w.shape[0] != 1:
            raise ConversionError(f"'{src}.conv.weight' has shape {list(w.shape)}, expected [1,O,I,k,k]")
        out[dst + ".weight"] = w[0]  # NVIDIA scales the styles by 1/sqrt(I*k*k) instead
        out[dst + ".bias"] = take(src + ".bias").reshape(-1)
        out[dst + ".affine.weight"] = take(src + ".conv.modulation.weight")
        out[dst + ".affine.bias"] = take(src + ".conv.modulation.bias")
        if src + ".upsample.kernel" in sd:
            used.add(src + ".upsample.kernel")

    # Synthesis, block by block.
    out["synthesis.b4.const"] = take("input.input")[0]
    out["synthesis.b4.resample_filter"] = fbuf
    styled_conv("conv1", "synthesis.b4.conv1", 0)
    to_rgb("to_rgb1", "synthesis.b4.torgb")
    for k in range(len(channels) - 1):
        b = f"synthesis.b{8 << k}"
        out[b + ".resample_filter"] = fbuf
        styled_conv(f"convs.{2 * k}", b + ".conv0", 2 * k + 1)
        styled_conv(f"convs.{2 * k + 1}", b + ".conv1", 2 * k + 2)
        to_rgb(f"to_rgbs.{k}", b + ".torgb")

    # Mapping.
    if latent_avg is not None:
        w_avg = np.asarray(latent_avg, np.float32).reshape(-1)
        if w_avg.shape != (style_dim,):
            raise ConversionError(f"latent_avg has shape {list(np.shape(latent_avg))}, "
                                  f"expected [{style_dim}]")
    else:
        print(f"note: the checkpoint has no latent_avg; w_avg = mean of mapping(z) over "
              f"{W_AVG_SAMPLES} standard-normal z (numpy default_rng seed {W_AVG_SEED}, float64)")
        w_avg = mapping_mean(sd, n_mlp, lr_mlp)
    out["mapping.w_avg"] = w_avg
    for i in range(1, n_mlp + 1):
        out[f"mapping.fc{i - 1}.weight"] = take(f"style.{i}.weight")
        out[f"mapping.fc{i - 1}.bias"] = take(f"style.{i}.bias")

    leftover = [k for k in sd if k not in used]
    if leftover:
        raise ConversionError(
            "rosinality state dict has tensors this converter does not know (not a plain "
            "StyleGAN2 generator, e.g. SWAGAN?): " + ", ".join(leftover[:12])
            + (f", ... ({len(leftover) - 12} more)" if len(leftover) > 12 else ""))
    return out, cfg


def convert(in_path: str, out_path: str, lr_mlp: float = 0.01):
    sd, latent_avg = load_checkpoint(in_path)
    tensors, cfg = convert_state_dict(
        sd, latent_avg, lr_mlp=lr_mlp,
        source=f"rosinality/stylegan2-pytorch checkpoint {os.path.basename(in_path)} (g_ema), "
               "tools/convert_rosinality.py")
    write_generator(out_path, tensors, cfg)
    return cfg


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Convert a rosinality stylegan2-pytorch checkpoint (g_ema) to ganinv safetensors.")
    ap.add_argument("input", help="checkpoint (.pt) with a 'g_ema' state dict")
    ap.add_argument("output", help="output .safetensors file")
    ap.add_argument("--lr-mlp", type=float, default=0.01,
                    help="the Generator's lr_mlp (mapping lr multiplier; not stored in "
                         "checkpoints; default 0.01 as in rosinality's Generator)")
    args = ap.parse_args(argv)
    try:
        cfg = convert(args.input, args.output, lr_mlp=args.lr_mlp)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {cfg['img_resolution']}x{cfg['img_resolution']}x"
          f"{cfg['img_channels']}, style_dim {cfg['w_dim']}, {cfg['mapping_layers']} mapping "
          f"layers, num_ws {cfg['num_ws']}, channel_base {cfg['channel_base']}, channel_max "
          f"{cfg['channel_max']}, resample_filter {cfg['resample_filter']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
