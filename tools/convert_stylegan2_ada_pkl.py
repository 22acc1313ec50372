#!/usr/bin/env python3
"""Convert an NVIDIA stylegan2-ada-pytorch network pickle to ganinv safetensors.

    PYTHONPATH=/path/to/stylegan2-ada-pytorch python3 tools/convert_stylegan2_ada_pkl.py IN.pkl OUT.safetensors

The pickle (as written by the official training loop: a dict with 'G', 'D',
'G_ema', ...) references the repository's `torch_utils` and `dnnlib` modules,
so a checkout of NVlabs/stylegan2-ada-pytorch must be importable.  Only
'G_ema' is read.  Its state dict is written unchanged, under NVIDIA's own
names, as float32, and the generator's configuration (from G_ema.init_kwargs)
goes to the metadata entry "config".

Supported: the 'skip' architecture (the default of the official configs),
c_dim = 0, lrelu activations.  Anything else is refused with a message.
TensorFlow pickles (.pkl from the original StyleGAN2) must first be loaded
and re-saved with the repository's legacy.py.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from collections import OrderedDict
from typing import Mapping

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stylegan2_layout import (ConversionError, block_resolutions, check_and_order,  # noqa: E402
                              make_config, write_generator)

# Defaults of the official constructors, used where init_kwargs leaves a field out.
SYNTHESIS_DEFAULTS = dict(channel_base=32768, channel_max=512, num_fp16_res=0, conv_clamp=None,
                          architecture="skip", resample_filter=[1, 3, 3, 1])
MAPPING_DEFAULTS = dict(num_layers=8, lr_multiplier=0.01, w_avg_beta=0.995)


def load_g_ema(path: str):
    """Unpickle `path` and return its 'G_ema' network."""
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("dnnlib.tflib"):
            raise ConversionError(
                f"{path} is a TensorFlow StyleGAN2 pickle; re-save it with "
                "stylegan2-ada-pytorch's legacy.py first") from None
        if e.name and e.name.split(".")[0] in ("torch_utils", "dnnlib", "training"):
            raise ConversionError(
                f"cannot unpickle {path}: module '{e.name}' not found. Put your checkout of "
                "NVlabs/stylegan2-ada-pytorch on PYTHONPATH (the pickle refers to its "
                "torch_utils and dnnlib modules)") from None
        raise
    if not isinstance(data, Mapping):
        raise ConversionError(
            f"{path}: expected a dict with the key 'G_ema' (an official network pickle), "
            f"got {type(data).__name__}")
    if "G_ema" not in data:
        raise ConversionError(
            f"{path}: the pickle has no key 'G_ema' (keys: {', '.join(map(str, data.keys()))})")
    return data["G_ema"]


def _get(kwargs: Mapping, key: str, default):
    value = kwargs.get(key, default) if kwargs is not None else default
    return default if value is None and default is not None else value


def _number(x):
    """JSON-friendly number: int when integral, else float (None stays None)."""
    if x is None:
        return None
    x = float(x)
    return int(x) if x.is_integer() else x


def config_from_generator(G, source: str) -> "OrderedDict[str, object]":
    """Build the ganinv config of an NVIDIA Generator from its init_kwargs."""
    ik = dict(getattr(G, "init_kwargs", None) or {})
    mk = dict(ik.get("mapping_kwargs") or {})
    sk = dict(ik.get("synthesis_kwargs") or {})

    def top(key):
        val = ik.get(key, getattr(G, key, None))
        if val is None:
            raise ConversionError(f"G_ema has no '{key}' in init_kwargs or as an attribute")
        return int(val)

    z_dim, c_dim, w_dim = top("z_dim"), top("c_dim"), top("w_dim")
    img_resolution, img_channels = top("img_resolution"), top("img_channels")

    architecture = sk.get("architecture", SYNTHESIS_DEFAULTS["architecture"])
    # The blocks themselves are the truth where they can be seen.
    synthesis = getattr(G, "synthesis", None)
    if synthesis is not None:
        for res in block_resolutions(img_resolution):
            arch = getattr(getattr(synthesis, f"b{res}", None), "architecture", None)
            if arch is not None and arch != architecture:
                architecture = arch
    if architecture != "skip":
        raise ConversionError(
            f"architecture '{architecture}' is not supported: ganinv implements the StyleGAN2 "
            "'skip' generator only (not 'orig' or 'resnet')")
    if c_dim != 0:
        raise ConversionError(
            f"c_dim = {c_dim}: conditional (class-label) generators are not supported; "
            "ganinv's StyleGAN2 has no label embedding (c_dim must be 0)")
    for key, kw, default in (("activation", sk, "lrelu"), ("activation", mk, "lrelu")):
        if kw.get(key, default) != default:
            raise ConversionError(f"activation '{kw[key]}' is not supported (only 'lrelu')")
    if mk.get("layer_features") not in (None, w_dim):
        raise ConversionError(
            f"mapping layer_features = {mk['layer_features']} != w_dim = {w_dim} is not supported")
    if sk.get("kernel_size", 3) != 3:
        raise ConversionError(f"synthesis kernel_size = {sk['kernel_size']} is not supported (only 3)")

    w_avg_beta = mk.get("w_avg_beta", MAPPING_DEFAULTS["w_avg_beta"])
    num_ws = getattr(G, "num_ws", None)
    if num_ws is None:
        num_ws = 2 * int(np.log2(img_resolution)) - 2
    return make_config(
        architecture=architecture,
        z_dim=z_dim, c_dim=c_dim, w_dim=w_dim,
        img_resolution=img_resolution, img_channels=img_channels,
        mapping_layers=int(_get(mk, "num_layers", MAPPING_DEFAULTS["num_layers"])),
        channel_base=int(_get(sk, "channel_base", SYNTHESIS_DEFAULTS["channel_base"])),
        channel_max=int(_get(sk, "channel_max", SYNTHESIS_DEFAULTS["channel_max"])),
        num_fp16_res=int(_get(sk, "num_fp16_res", SYNTHESIS_DEFAULTS["num_fp16_res"])),
        conv_clamp=_number(sk.get("conv_clamp", SYNTHESIS_DEFAULTS["conv_clamp"])),
        num_ws=int(num_ws),
        lr_multiplier=_number(_get(mk, "lr_multiplier", MAPPING_DEFAULTS["lr_multiplier"])),
        w_avg_beta=_number(w_avg_beta),
        resample_filter=[_number(v) for v in
                         _get(sk, "resample_filter", SYNTHESIS_DEFAULTS["resample_filter"])],
        source=source,
    )


def _to_numpy(name: str, value) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().float().numpy()
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        raise ConversionError(f"tensor '{name}' has non-float dtype {arr.dtype}")
    return arr.astype(np.float32)


def tensors_from_generator(G, cfg) -> "OrderedDict[str, np.ndarray]":
    """G_ema's state dict as float32 numpy arrays, checked against the config."""
    tensors = OrderedDict((k, _to_numpy(k, v)) for k, v in G.state_dict().items())
    # use_noise=False generators have no noise buffers; zero noise is the same computation.
    added = []
    for name in [k for k in tensors if k.endswith(".affine.bias") and ".conv" in k]:
        layer = name[: -len(".affine.bias")]
        if layer + ".noise_strength" not in tensors and layer + ".weight" in tensors:
            res = int(layer.split(".b")[1].split(".")[0])
            tensors[layer + ".noise_strength"] = np.zeros([], np.float32)
            tensors[layer + ".noise_const"] = np.zeros([res, res], np.float32)
            added.append(layer)
    if added:
        print(f"note: {len(added)} layers have no noise inputs (use_noise=False); "
              "wrote noise_strength = 0 and noise_const = 0, which computes the same image")
    if "mapping.w_avg" not in tensors:
        print("note: the mapping network has no w_avg (w_avg_beta=None); wrote zeros, "
              "so truncation is meaningless for this model")
        tensors["mapping.w_avg"] = np.zeros([cfg["w_dim"]], np.float32)
    return check_and_order(tensors, cfg, what="G_ema state dict")


def convert(in_path: str, out_path: str) -> "OrderedDict[str, object]":
    G = load_g_ema(in_path)
    cfg = config_from_generator(
        G, source=f"NVlabs/stylegan2-ada-pytorch network pickle {os.path.basename(in_path)} "
                  "(G_ema), tools/convert_stylegan2_ada_pkl.py")
    tensors = tensors_from_generator(G, cfg)
    write_generator(out_path, tensors, cfg)
    return cfg


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Convert an NVIDIA stylegan2-ada-pytorch .pkl (G_ema) to ganinv safetensors. "
                    "The stylegan2-ada-pytorch checkout must be on PYTHONPATH.")
    ap.add_argument("input", help="network pickle (.pkl) with a 'G_ema' entry")
    ap.add_argument("output", help="output .safetensors file")
    args = ap.parse_args(argv)
    try:
        cfg = convert(args.input, args.output)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {cfg['img_resolution']}x{cfg['img_resolution']}x"
          f"{cfg['img_channels']}, z_dim {cfg['z_dim']}, w_dim {cfg['w_dim']}, "
          f"{cfg['mapping_layers']} mapping layers, num_ws {cfg['num_ws']}, "
          f"channel_base {cfg['channel_base']}, channel_max {cfg['channel_max']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
