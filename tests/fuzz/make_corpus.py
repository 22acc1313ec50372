#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/): tiny valid files of
each kind and the reproducer of every finding of issue 12. Deterministic; standard library only.
Run from anywhere: python3 tests/fuzz/make_corpus.py"""
import base64
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ------------------------------------------------------------------ safetensors
def safetensors(tensors, metadata=None, raw_header=None):
    """tensors: list of (name, dtype, shape, bytes); offsets are laid out back to back."""
    header, blob = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = raw_header if raw_header is not None else json.dumps(header)
    return struct.pack("<Q", len(text)) + text.encode() + blob


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


put("safetensors", "valid_two_tensors.safetensors",
    safetensors([("a", "F32", [2], f32(1, 2)), ("b", "F16", [1, 2], b"\x00\x3c\x00\xc0"),
                 ("c", "U8", [3], b"\x01\x02\x03")], {"note": "seed"}))
put("safetensors", "valid_empty_tensor.safetensors", safetensors([("e", "F32", [0, 4], b""), ("x", "I32", [1], b"\x07\0\0\0")]))
# Findings: numel * element_size wrapping to 0; a 64-bit element count overflow; an empty tensor
# hiding an overlap.
put("safetensors", "crash_bytes_wrap.safetensors",
    safetensors([], raw_header='{"t":{"dtype":"F32","shape":[4503599627370496,1024],"data_offsets":[0,0]}}'))
put("safetensors", "crash_numel_overflow.safetensors",
    safetensors([], raw_header='{"t":{"dtype":"U8","shape":[274177,67280421310721],"data_offsets":[0,1]}}') + b"x")
put("safetensors", "crash_overlap_hidden_by_empty.safetensors",
    safetensors([], raw_header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                               '"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},'
                               '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}') + f32(1, 2, 3))

# The smallest complete StyleGAN2 generator (4x4, one channel, one mapping layer), and the
# hostile configs of the findings on top of its tensors.
TINY_CFG = {"architecture": "skip", "z_dim": 1, "c_dim": 0, "w_dim": 1, "img_resolution": 4, "img_channels": 1,
            "mapping_layers": 1, "channel_base": 4, "channel_max": 1, "num_fp16_res": 0, "conv_clamp": None,
            "num_ws": 2, "lr_multiplier": 0.01, "w_avg_beta": 0.995, "resample_filter": [1, 3, 3, 1]}
TINY_TENSORS = [
    ("mapping.fc0.weight", "F32", [1, 1], f32(0.5)), ("mapping.fc0.bias", "F32", [1], f32(0)),
    ("mapping.w_avg", "F32", [1], f32(0.1)), ("synthesis.b4.const", "F32", [1, 4, 4], f32(*[0.25] * 16)),
    ("synthesis.b4.conv1.weight", "F32", [1, 1, 3, 3], f32(*[0.1] * 9)),
    ("synthesis.b4.conv1.noise_strength", "F32", [], f32(0)), ("synthesis.b4.conv1.bias", "F32", [1], f32(0)),
    ("synthesis.b4.conv1.noise_const", "F32", [4, 4], f32(*[0.0] * 16)),
    ("synthesis.b4.conv1.affine.weight", "F32", [1, 1], f32(1)), ("synthesis.b4.conv1.affine.bias", "F32", [1], f32(1)),
    ("synthesis.b4.torgb.weight", "F32", [1, 1, 1, 1], f32(1)), ("synthesis.b4.torgb.bias", "F32", [1], f32(0)),
    ("synthesis.b4.torgb.affine.weight", "F32", [1, 1], f32(1)), ("synthesis.b4.torgb.affine.bias", "F32", [1], f32(1)),
]


def generator(**changes):
    cfg = dict(TINY_CFG, **changes)
    return safetensors(TINY_TENSORS, {"config": json.dumps(cfg)})


put("safetensors", "valid_generator_4x4.safetensors", generator())
put("safetensors", "crash_mapping_layers_1e9.safetensors", generator(mapping_layers=1000000000))
put("safetensors", "crash_resample_filter_20000_taps.safetensors", generator(resample_filter=[1] * 20000))
put("safetensors", "crash_num_fp16_res_negative.safetensors", generator(num_fp16_res=-5))
put("safetensors", "crash_img_resolution_3.safetensors", generator(img_resolution=3))

# ------------------------------------------------------------------ json
put("json", "valid_config.json", json.dumps(dict(TINY_CFG, img_resolution=1024, z_dim=512, w_dim=512,
                                                 mapping_layers=8, channel_base=32768, channel_max=512, num_ws=18)))
put("json", "valid_mixed.json", '{"a": [1, 2.5, -3e2, true, false, null], "b": {"c": "x\\ny\\u00e9\\ud83d\\ude00"}}')
put("json", "crash_1e999.json", '{"lr_multiplier": 1e999}')
put("json", "crash_mapping_layers_1e9.json", json.dumps(dict(TINY_CFG, mapping_layers=1000000000)))
put("json", "crash_resample_filter_20000_taps.json", json.dumps(dict(TINY_CFG, resample_filter=[1] * 20000)))
put("json", "crash_num_fp16_res_negative.json", json.dumps(dict(TINY_CFG, num_fp16_res=-5)))
put("json", "crash_img_resolution_3.json", json.dumps(dict(TINY_CFG, img_resolution=3)))


# ------------------------------------------------------------------ image
def png(width, height, rows=None, color_type=0):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if rows is not None:
        out += chunk(b"IDAT", zlib.compress(rows, 9))
    return out + chunk(b"IEND", b"")


put("image", "valid_gray_4x3.png", png(4, 3, b"".join(b"\0" + bytes([16 * (x + y) for x in range(4)]) for y in range(3))))
put("image", "valid_rgb_2x2.png", png(2, 2, b"\0" + bytes(range(6)) + b"\0" + bytes(range(6, 12)), color_type=2))
# 24-bit BMP, 2x2 (rows padded to 4 bytes, bottom-up).
bmp_rows = (bytes([0, 0, 255, 0, 255, 0]) + b"\0\0") + (bytes([255, 0, 0, 255, 255, 255]) + b"\0\0")
put("image", "valid_2x2.bmp", b"BM" + struct.pack("<IHHI", 54 + len(bmp_rows), 0, 0, 54) +
    struct.pack("<IiiHHIIiiII", 40, 2, 2, 1, 24, 0, len(bmp_rows), 2835, 2835, 0, 0) + bmp_rows)
# GIF 2x1, two-colour palette, LZW min code size 2: clear, 0, 1, end.
put("image", "valid_2x1.gif", b"GIF89a" + struct.pack("<HH", 2, 1) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff" +
    b"\x2c" + struct.pack("<HHHH", 0, 0, 2, 1) + b"\x00" + b"\x02\x02\x44\x01\x00" + b"\x3b")
put("image", "valid_2x2.pgm", b"P5\n2 2\n255\n\x00\x40\x80\xff")
# Findings: a 16000x16000 PNG (header and the start of its all-zero data), a GIF whose screen
# declares 17921x21071, and the 9-byte JPEG that overflows stb's Huffman size list.
put("image", "crash_png_16000x16000.png", png(16000, 16000, b"\0" * 16001))
put("image", "crash_gif_17921x21071.gif", b"GIF89a" + struct.pack("<HH", 17921, 21071) + b"\x80\x00\x00" +
    b"\x00\x00\x00\xff\xff\xff" + b"\x2c" + struct.pack("<HHHH", 0, 0, 17921, 21071) + b"\x00" +
    b"\x02\x02\x44\x01\x00" + b"\x3b")
put("image", "crash_jpeg_dht_overflow.jpg", bytes.fromhex("ffd8ffc401a20048d9"))
# Found by fuzz_image on the first fix: 0xFF fill bytes before the SOI code, skipped by stb.
put("image", "crash_jpeg_dht_after_fill_bytes.jpg", bytes.fromhex("ffffd8ffc400ff0048d9d8ffc400ff0048d9"))
# Found by fuzz_image (session 8): an IDAT chunk declaring 1.3 GB in a 110-byte file (stb grew its
# buffer to 2 GiB before reading the chunk).
put("image", "crash_png_idat_length_past_end.png", base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAAAAACRn/EaAAAAE0lEQVR42mNgEFABAAAAAAATSURBVHjaY2AQE1AAAABJREFUeNpjYBBQAQAAAQAAAAAAAAAAQmCC"))
# Found by fuzz_image: a PNM width of 70 digits, which stb accumulates into an int.
put("image", "crash_pnm_width_overflow.pgm", b"P5" + b"2" * 70 + b"\n5")
