#!/usr/bin/env python3
"""Convert the official LPIPS v0.1 linear-layer weights (`weights/v0.1/vgg.pth` of the LPIPS
package) to the safetensors file ganinv's Lpips reads.

    python3 tools/convert_lpips_lin.py vgg.pth OUT.safetensors

The .pth is a state dict with five 1x1 convolutions `lin{k}.model.1.weight` of shape
[1, C_k, 1, 1], C = 64, 128, 256, 512, 512 (index 1 because a Dropout sits at index 0 of each
`model` Sequential; `lin{k}.model.0.weight`, written when dropout is off, is accepted too).
The output keeps the official names `lin{k}.model.1.weight`, float32, shapes unchanged. The
weights must be non-negative, as LPIPS trains them; a negative one is reported.
The VGG trunk is a separate file (tools/convert_torchvision_vgg16.py).
Errors end with exit status 2 and an `error: ...` line on stderr.

Written for ganinv; no code from LPIPS.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_torchvision_vgg16 import ConversionError, load_state_dict  # noqa: E402
from safetensors_lite import save_file  # noqa: E402

LPIPS_VGG_CHANNELS = (64, 128, 256, 512, 512)


def convert_state_dict(sd) -> "OrderedDict[str, np.ndarray]":
    found = {}
    for k, v in sd.items():
        m = re.fullmatch(r"(?:module\.)?lin(\d)\.model\.[01]\.weight", k)
        if m:
            found[int(m.group(1))] = np.asarray(v, dtype=np.float32)
    if not found:
        raise ConversionError("no LPIPS linear weights found (expected keys 'lin0.model.1.weight' .. "
                              "'lin4.model.1.weight'; got " + ", ".join(list(sd.keys())[:8]) + ")")
    out = OrderedDict()
    for k, c in enumerate(LPIPS_VGG_CHANNELS):
        if k not in found:
            raise ConversionError(f"missing 'lin{k}.model.1.weight' ([1, {c}, 1, 1])")
        arr = found[k]
        if tuple(arr.shape) != (1, c, 1, 1):
            raise ConversionError(f"'lin{k}.model.1.weight' has shape {list(arr.shape)}, expected [1, {c}, 1, 1] "
                                  "(LPIPS-VGG; AlexNet/SqueezeNet weights have other channel counts)")
        if not np.all(np.isfinite(arr)):
            raise ConversionError(f"'lin{k}.model.1.weight' holds non-finite values")
        if np.any(arr < 0):
            raise ConversionError(f"'lin{k}.model.1.weight' has negative weights: not trained LPIPS weights")
        out[f"lin{k}.model.1.weight"] = arr
    extra = sorted(set(found) - set(range(5)))
    if extra:
        raise ConversionError(f"unexpected linear layers lin{extra[0]}...: not the 5-layer VGG variant")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="LPIPS v0.1 vgg.pth (lin0..lin4) -> ganinv safetensors")
    ap.add_argument("input", help="LPIPS linear weights (.pth)")
    ap.add_argument("output", help="output .safetensors file")
    args = ap.parse_args(argv)
    try:
        tensors = convert_state_dict(load_state_dict(args.input))
        save_file(tensors, args.output, {"network": "lpips_vgg_lin", "version": "0.1",
                                         "source": os.path.basename(args.input)})
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: lin0..lin4 ({', '.join(map(str, LPIPS_VGG_CHANNELS))} channels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
