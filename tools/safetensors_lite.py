"""A small, dependency-free (numpy only) safetensors reader and writer.

File layout (https://github.com/huggingface/safetensors, "format" section):

    [8 bytes]  N, unsigned 64-bit little-endian: length of the JSON header
    [N bytes]  JSON object, UTF-8.  One entry per tensor:
                   "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}
               plus an optional "__metadata__": {str: str}.
               Offsets are relative to the first byte after the header.
    [rest]     the raw little-endian tensor bytes, one after the other.

This module writes F32 only and reads F32, F16 and BF16 (BF16 is widened to
float32, which is exact).  The header is padded with spaces so that the data
starts at a multiple of 8 bytes.  Tensors are written contiguously, in the
order of the mapping given to `save_file`.

Functions:
    save_file(tensors, path, metadata=None)
    load_file(path)              -> dict name -> numpy array (insertion order = file order)
    load_metadata(path)          -> dict str -> str ({} if the file has none)
    load_header(path)            -> the parsed JSON header (dict)
    load_config(path)            -> json.loads(metadata["config"])
"""

from __future__ import annotations

import json
import struct
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

__all__ = [
    "SafetensorsError",
    "save_file",
    "load_file",
    "load_metadata",
    "load_header",
    "load_config",
]

# Largest header this reader accepts (the reference implementation uses 100 MB too).
_MAX_HEADER_BYTES = 100 * 1024 * 1024

# dtype tag -> (numpy dtype of the stored bytes, bytes per element)
_READ_DTYPES = {
    "F32": (np.dtype("<f4"), 4),
    "F16": (np.dtype("<f2"), 2),
    "BF16": (np.dtype("<u2"), 2),  # raw bits, widened to float32 after reading
}


class SafetensorsError(ValueError):
    """Raised for malformed files or unsupported contents."""


def _as_f32(name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "f":
        raise SafetensorsError(
            f"tensor '{name}': dtype {arr.dtype} is not a floating-point type; "
            "this writer stores F32 only")
    return np.asarray(arr, dtype="<f4", order="C")  # keeps 0-d shapes


def save_file(tensors: Mapping[str, np.ndarray], path: str,
              metadata: Optional[Mapping[str, str]] = None) -> None:
    """Write `tensors` (name -> float array) as F32 safetensors to `path`.

    Tensors are stored in the iteration order of `tensors`.  `metadata`, if
    given, must map str to str; it goes to the header's "__metadata__".
    """
    header: "OrderedDict[str, object]" = OrderedDict()
    if metadata:
        meta = OrderedDict()
        for key, val in metadata.items():
            if not isinstance(key, str) or not isinstance(val, str):
                raise SafetensorsError(
                    f"metadata must map str to str, got {type(key).__name__} -> "
                    f"{type(val).__name__} for key {key!r}")
            meta[key] = val
        header["__metadata__"] = meta

    blobs = []
    offset = 0
    for name, value in tensors.items():
        if not isinstance(name, str) or not name:
            raise SafetensorsError(f"tensor names must be non-empty strings, got {name!r}")
        if name == "__metadata__":
            raise SafetensorsError("'__metadata__' is reserved and cannot name a tensor")
        arr = _as_f32(name, value)
        data = arr.tobytes(order="C")
        header[name] = OrderedDict([
            ("dtype", "F32"),
            ("shape", [int(d) for d in arr.shape]),
            ("data_offsets", [offset, offset + len(data)]),
        ])
        blobs.append(data)
        offset += len(data)

    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((-len(text)) % 8)  # 8 + len(text) becomes a multiple of 8
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def _read_header(f, path: str) -> Tuple[dict, int]:
    raw = f.read(8)
    if len(raw) != 8:
        raise SafetensorsError(f"{path}: file too short for a safetensors header")
    (n,) = struct.unpack("<Q", raw)
    if n == 0 or n > _MAX_HEADER_BYTES:
        raise SafetensorsError(f"{path}: implausible header length {n}")
    text = f.read(n)
    if len(text) != n:
        raise SafetensorsError(f"{path}: header says {n} bytes but the file ends early")
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=OrderedDict)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not valid UTF-8 JSON ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    return header, 8 + n


def load_header(path: str) -> dict:
    """Return the parsed JSON header (tensor entries and '__metadata__')."""
    with open(path, "rb") as f:
        header, _ = _read_header(f, path)
    return header


def load_metadata(path: str) -> Dict[str, str]:
    """Return the '__metadata__' dict of the file ({} if there is none)."""
    meta = load_header(path).get("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise SafetensorsError(f"{path}: '__metadata__' must map str to str")
    return dict(meta)


def load_config(path: str) -> dict:
    """Return the model configuration stored as JSON in metadata['config']."""
    meta = load_metadata(path)
    if "config" not in meta:
        raise SafetensorsError(f"{path}: no 'config' entry in the metadata")
    return json.loads(meta["config"], object_pairs_hook=OrderedDict)


def load_file(path: str) -> "OrderedDict[str, np.ndarray]":
    """Read every tensor of `path`.

    Returns name -> numpy array in file (data offset) order.  F32 gives float32,
    F16 gives float16, BF16 gives float32 (exact widening).  The offsets are
    checked: in bounds, sized to match the shape, not overlapping.
    """
    with open(path, "rb") as f:
        header, data_start = _read_header(f, path)
        buf = f.read()

    entries = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict):
                raise SafetensorsError(f"{path}: '__metadata__' is not an object")
            continue
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise SafetensorsError(
                f"{path}: entry '{name}' needs 'dtype', 'shape' and 'data_offsets'")
        dtype = info["dtype"]
        if dtype not in _READ_DTYPES:
            raise SafetensorsError(
                f"{path}: tensor '{name}' has dtype {dtype}; this reader handles "
                f"{', '.join(_READ_DTYPES)}")
        shape = info["shape"]
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise SafetensorsError(f"{path}: tensor '{name}' has a bad shape {shape!r}")
        offs = info["data_offsets"]
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
                or not 0 <= offs[0] <= offs[1] <= len(buf)):
            raise SafetensorsError(
                f"{path}: tensor '{name}' has data_offsets {offs!r} outside the "
                f"{len(buf)}-byte data section")
        np_dtype, size = _READ_DTYPES[dtype]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if offs[1] - offs[0] != count * size:
            raise SafetensorsError(
                f"{path}: tensor '{name}' ({dtype}, shape {shape}) needs {count * size} "
                f"bytes but its offsets span {offs[1] - offs[0]}")
        entries.append((offs[0], offs[1], name, np_dtype, dtype, shape))

    entries.sort(key=lambda e: (e[0], e[1]))
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    prev_end = 0
    for begin, end, name, np_dtype, dtype, shape in entries:
        if begin < prev_end:
            raise SafetensorsError(f"{path}: tensor '{name}' overlaps the previous tensor")
        prev_end = end
        arr = np.frombuffer(buf, dtype=np_dtype, count=(end - begin) // np_dtype.itemsize,
                            offset=begin).reshape(shape)
        if dtype == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.astype(arr.dtype.newbyteorder("="), copy=True)
    return out
