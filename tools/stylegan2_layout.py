"""The tensor layout and configuration of a ganinv StyleGAN2 generator file.

Both converters (NVIDIA .pkl and rosinality .pt) write the same thing: the
state dict of an NVIDIA stylegan2-ada-pytorch `Generator` ('skip'
architecture, no labels) under NVIDIA's own tensor names, float32, with the
configuration as a JSON string in the safetensors metadata entry "config".

This module knows, from a configuration alone, which tensors such a file
holds, in which order and with which shapes, and checks a converted state dict
against it.  It is written from the published description of the architecture
(Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" and
"Training GANs with Limited Data"); it contains no code of either project.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Dict, Iterable, List, Mapping, Sequence

import numpy as np

from safetensors_lite import save_file  # same folder

# Field order of the "config" metadata (that of shared/fixtures/stylegan2_tiny/generator.json).
CONFIG_FIELDS = (
    "architecture", "z_dim", "c_dim", "w_dim", "img_resolution", "img_channels",
    "mapping_layers", "channel_base", "channel_max", "num_fp16_res", "conv_clamp",
    "num_ws", "lr_multiplier", "w_avg_beta", "resample_filter", "source",
)


class ConversionError(ValueError):
    """The input cannot be converted; the message says why."""


def block_resolutions(img_resolution: int) -> List[int]:
    if img_resolution < 4 or img_resolution & (img_resolution - 1):
        raise ConversionError(
            f"img_resolution must be a power of two >= 4, got {img_resolution}")
    return [2 ** i for i in range(2, int(math.log2(img_resolution)) + 1)]


def num_ws_for(img_resolution: int) -> int:
    """Number of per-layer w vectors of the 'skip' generator: 2*log2(res) - 2."""
    return 2 * int(math.log2(img_resolution)) - 2


def channels_for(channel_base: int, channel_max: int, img_resolution: int) -> Dict[int, int]:
    """NVIDIA's channel rule: channels(res) = min(channel_base // res, channel_max)."""
    return {res: min(channel_base // res, channel_max) for res in block_resolutions(img_resolution)}


def filter_shape(resample_filter: Sequence[float]) -> List[int]:
    """Shape of a stored resample_filter buffer.

    NVIDIA's setup_filter keeps a 1-D filter of 8 taps or more separable
    (stored 1-D); shorter ones are stored as their 2-D outer product.
    """
    n = len(resample_filter)
    return [n] if n >= 8 else [n, n]


def filter_buffer(resample_filter: Sequence[float]) -> np.ndarray:
    """The normalised filter buffer (outer product / sum for < 8 taps)."""
    k = np.asarray(resample_filter, dtype=np.float32)
    if k.ndim != 1 or k.size == 0:
        raise ConversionError(f"resample_filter must be a non-empty 1-D list, got {resample_filter!r}")
    if k.size < 8:
        k = np.outer(k, k)
    return (k / k.sum()).astype(np.float32)


def make_config(**fields) -> "OrderedDict[str, object]":
    """Put the given fields in the canonical order; every field must be present."""
    missing = [f for f in CONFIG_FIELDS if f not in fields]
    extra = [f for f in fields if f not in CONFIG_FIELDS]
    if missing or extra:
        raise ConversionError(f"config: missing fields {missing}, unknown fields {extra}")
    cfg = OrderedDict((f, fields[f]) for f in CONFIG_FIELDS)
    validate_config(cfg)
    return cfg


def validate_config(cfg: Mapping[str, object]) -> None:
    if cfg["architecture"] != "skip":
        raise ConversionError(
            f"architecture '{cfg['architecture']}' is not supported: ganinv implements the "
            "StyleGAN2 'skip' generator only (not 'orig' or 'resnet')")
    if cfg["c_dim"] != 0:
        raise ConversionError(
            f"c_dim = {cfg['c_dim']}: conditional (class-label) generators are not supported; "
            "ganinv's StyleGAN2 has no label embedding (c_dim must be 0)")
    for key in ("z_dim", "w_dim", "img_channels", "mapping_layers", "channel_base",
                "channel_max", "num_ws"):
        if not isinstance(cfg[key], int) or cfg[key] <= 0:
            raise ConversionError(f"config field {key} must be a positive integer, got {cfg[key]!r}")
    if not isinstance(cfg["num_fp16_res"], int) or cfg["num_fp16_res"] < 0:
        raise ConversionError(f"num_fp16_res must be an integer >= 0, got {cfg['num_fp16_res']!r}")
    if cfg["conv_clamp"] is not None and not cfg["conv_clamp"] > 0:
        raise ConversionError(f"conv_clamp must be null or > 0, got {cfg['conv_clamp']!r}")
    if cfg["num_ws"] != num_ws_for(cfg["img_resolution"]):
        raise ConversionError(
            f"num_ws = {cfg['num_ws']} but a {cfg['img_resolution']}px 'skip' generator has "
            f"{num_ws_for(cfg['img_resolution'])}")
    filter_buffer(cfg["resample_filter"])


def expected_shapes(cfg: Mapping[str, object]) -> "OrderedDict[str, List[int]]":
    """Every tensor of the generator, in NVIDIA's state_dict order, with its shape."""
    res_list = block_resolutions(cfg["img_resolution"])
    ch = channels_for(cfg["channel_base"], cfg["channel_max"], cfg["img_resolution"])
    w_dim, fshape = cfg["w_dim"], filter_shape(cfg["resample_filter"])
    out: "OrderedDict[str, List[int]]" = OrderedDict()

    def layer(prefix: str, cin: int, cout: int, res: int) -> None:
        out[prefix + ".weight"] = [cout, cin, 3, 3]
        out[prefix + ".noise_strength"] = []
        out[prefix + ".bias"] = [cout]
        out[prefix + ".resample_filter"] = list(fshape)
        out[prefix + ".noise_const"] = [res, res]
        out[prefix + ".affine.weight"] = [cin, w_dim]
        out[prefix + ".affine.bias"] = [cin]

    for res in res_list:
        b = f"synthesis.b{res}"
        cout = ch[res]
        if res == 4:
            out[b + ".const"] = [cout, 4, 4]
        out[b + ".resample_filter"] = list(fshape)
        if res > 4:
            layer(b + ".conv0", ch[res // 2], cout, res)
        layer(b + ".conv1", cout, cout, res)
        out[b + ".torgb.weight"] = [cfg["img_channels"], cout, 1, 1]
        out[b + ".torgb.bias"] = [cfg["img_channels"]]
        out[b + ".torgb.affine.weight"] = [cout, w_dim]
        out[b + ".torgb.affine.bias"] = [cout]

    out["mapping.w_avg"] = [w_dim]
    n = cfg["mapping_layers"]
    for i in range(n):
        fin = cfg["z_dim"] if i == 0 else w_dim
        out[f"mapping.fc{i}.weight"] = [w_dim, fin]
        out[f"mapping.fc{i}.bias"] = [w_dim]
    return out


def _short(names: Iterable[str], limit: int = 12) -> str:
    names = list(names)
    text = ", ".join(names[:limit])
    return text + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def check_and_order(tensors: Mapping[str, np.ndarray], cfg: Mapping[str, object],
                    what: str = "state dict") -> "OrderedDict[str, np.ndarray]":
    """Check names and shapes against the config; return float32 tensors in canonical order."""
    want = expected_shapes(cfg)
    missing = [k for k in want if k not in tensors]
    extra = [k for k in tensors if k not in want]
    if missing or extra:
        msg = [f"{what} does not match a StyleGAN2 'skip' generator with this config:"]
        if missing:
            msg.append(f"  missing tensors: {_short(missing)}")
        if extra:
            msg.append(f"  unexpected tensors: {_short(extra)}")
        raise ConversionError("\n".join(msg))
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for name, shape in want.items():
        arr = np.asarray(tensors[name])
        if list(arr.shape) != shape:
            raise ConversionError(
                f"{what}: tensor '{name}' has shape {list(arr.shape)}, expected {shape} "
                f"(channel_base={cfg['channel_base']}, channel_max={cfg['channel_max']})")
        if arr.dtype.kind != "f":
            raise ConversionError(f"{what}: tensor '{name}' has non-float dtype {arr.dtype}")
        out[name] = np.array(arr, dtype=np.float32, order="C")  # keeps 0-d shapes
    return out


def config_json(cfg: Mapping[str, object]) -> str:
    return json.dumps(cfg)


def write_generator(path: str, tensors: Mapping[str, np.ndarray], cfg: Mapping[str, object]) -> None:
    """Check, order and write a converted generator as safetensors with its config."""
    ordered = check_and_order(tensors, cfg, what="converted generator")
    save_file(ordered, path, metadata={"config": config_json(cfg)})
