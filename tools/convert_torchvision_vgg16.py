#!/usr/bin/env python3
"""Convert a torchvision VGG16 state dict to the safetensors file ganinv's VGG losses read.

    python3 tools/convert_torchvision_vgg16.py IN.pth OUT.safetensors

IN.pth is what `torch.save(torchvision.models.vgg16(...).state_dict())` writes (keys
`features.{idx}.weight|bias` and `classifier.*`), or the state dict of `vgg16().features`
alone (keys `{idx}.weight|bias`), or LPIPS' trunk naming (`net.slice{k}.{idx}.weight|bias`,
the same indices). The output holds the 13 conv layers under torchvision's names
`features.{idx}.weight` [O, I, 3, 3] and `features.{idx}.bias` [O], float32, idx in
0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28 (conv1_1 .. conv5_3); the classifier is dropped.
Every name and shape is checked; a missing or misshapen tensor stops the conversion and names
it. Errors end with exit status 2 and an `error: ...` line on stderr.

Written for ganinv; no code from torchvision.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_lite import save_file  # noqa: E402

# (torchvision index, in channels, out channels, ganinv layer name)
VGG16_CONVS = [(0, 3, 64, "conv1_1"), (2, 64, 64, "conv1_2"), (5, 64, 128, "conv2_1"), (7, 128, 128, "conv2_2"),
               (10, 128, 256, "conv3_1"), (12, 256, 256, "conv3_2"), (14, 256, 256, "conv3_3"),
               (17, 256, 512, "conv4_1"), (19, 512, 512, "conv4_2"), (21, 512, 512, "conv4_3"),
               (24, 512, 512, "conv5_1"), (26, 512, 512, "conv5_2"), (28, 512, 512, "conv5_3")]


class ConversionError(ValueError):
    pass


def load_state_dict(path: str) -> "OrderedDict[str, np.ndarray]":
    import torch

    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13
        sd = torch.load(path, map_location="cpu")
    except Exception as e:  # not a torch file, or pickled objects beyond tensors
        raise ConversionError(f"{path}: torch.load could not read it as a state dict ({e})") from e
    if hasattr(sd, "state_dict"):
        sd = sd.state_dict()
    if not isinstance(sd, dict):
        raise ConversionError(f"{path}: expected a state dict, got {type(sd).__name__}")
    return OrderedDict((k, v.detach().cpu().float().numpy() if hasattr(v, "detach") else np.asarray(v))
                       for k, v in sd.items())


def normalise_names(sd) -> "OrderedDict[str, np.ndarray]":
    """Maps the accepted spellings to features.{idx}.{weight|bias}; other keys are dropped."""
    out = OrderedDict()
    for k, v in sd.items():
        m = (re.fullmatch(r"(?:module\.)?features\.(\d+)\.(weight|bias)", k)
             or re.fullmatch(r"(\d+)\.(weight|bias)", k)
             or re.fullmatch(r"(?:net\.)?slice\d\.(\d+)\.(weight|bias)", k))
        if m:
            out[f"features.{int(m.group(1))}.{m.group(2)}"] = v
    return out


def convert_state_dict(sd) -> "OrderedDict[str, np.ndarray]":
    feats = normalise_names(sd)
    if not feats:
        raise ConversionError("no VGG16 feature tensors found (expected keys like 'features.0.weight'; got "
                              + ", ".join(list(sd.keys())[:8]) + ")")
    out = OrderedDict()
    for idx, cin, cout, name in VGG16_CONVS:
        for kind, shape in (("weight", (cout, cin, 3, 3)), ("bias", (cout,))):
            key = f"features.{idx}.{kind}"
            if key not in feats:
                raise ConversionError(f"missing tensor '{key}' ({name}.{kind}); is this a VGG16 (not VGG19/VGG16-BN)?")
            arr = np.asarray(feats[key], dtype=np.float32)
            if tuple(arr.shape) != shape:
                raise ConversionError(f"tensor '{key}' ({name}.{kind}) has shape {list(arr.shape)}, expected {list(shape)}")
            if not np.all(np.isfinite(arr)):
                raise ConversionError(f"tensor '{key}' ({name}.{kind}) holds non-finite values")
            out[key] = arr
    extra = sorted(set(feats) - set(out), key=lambda s: int(s.split(".")[1]))
    if extra:
        raise ConversionError(f"unexpected feature tensors {', '.join(extra[:6])}: not the VGG16 layout "
                              "(batch-norm or VGG19 variants are not supported)")
    return out


def convert(in_path: str, out_path: str) -> int:
    tensors = convert_state_dict(load_state_dict(in_path))
    meta = {"network": "vgg16_features", "layout": "torchvision vgg16().features, OIHW conv weights",
            "layers": json.dumps([n for _, _, _, n in VGG16_CONVS]), "source": os.path.basename(in_path)}
    save_file(tensors, out_path, meta)
    return len(tensors)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="torchvision VGG16 state dict -> ganinv safetensors (13 conv layers)")
    ap.add_argument("input", help="state dict (.pth) of torchvision.models.vgg16 or of its .features")
    ap.add_argument("output", help="output .safetensors file")
    args = ap.parse_args(argv)
    try:
        n = convert(args.input, args.output)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {n} tensors (13 conv layers, features.{{idx}}.weight|bias)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
