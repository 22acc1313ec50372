#!/usr/bin/python3
"""Independent numpy re-implementation of the dlib face-recognition ResNet as run by
@vladmandic/face-api (see tools/README_face_api.md), checked against the descriptors that the
package's own JavaScript produced (tests/data/face_api/identity_case.safetensors).

numpy only. Usage:
  /usr/bin/python3 tools/tests/face_resnet_reference.py [--data tests/data/face_api]
      [--float64] [--skimage-data .../skimage/data]
--float64        run the forward pass in float64 instead of float32
--skimage-data   also rebuild the crops from astronaut.png / lfw_subset.npy with numpy (needs PIL
                 only to decode the PNG) and check they equal the stored crops byte for byte
Exit status 0 when every descriptor has cosine similarity >= 0.99999 with the package's.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

_DT = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I32": np.int32,
       "I64": np.int64, "U8": np.uint8, "I8": np.int8}


def read_safetensors(path):
    """Returns (dict name -> np.ndarray, metadata dict)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt = np.dtype(_DT[info["dtype"]]).newbyteorder("<")
        arr = np.frombuffer(buf, dtype=dt, count=(e - b) // dt.itemsize, offset=base + b)
        out[name] = arr.reshape(info["shape"]).copy()
    return out, meta


def dequantise(tensors):
    """U8 codes + F64 `<name>.__scale` / `<name>.__min` (tools/convert_face_api.mjs) -> float32,
    float32(q * scale + min) evaluated in float64 as tfjs does; other tensors pass through."""
    out = {}
    for name, t in tensors.items():
        if name.endswith(".__scale") or name.endswith(".__min"):
            continue
        if name + ".__scale" in tensors:
            t = (t.astype(np.float64) * float(tensors[name + ".__scale"]) + float(tensors[name + ".__min"])).astype(np.float32)
        out[name] = t
    return out


# ---------------------------------------------------------------- layers (NHWC, HWIO filters)
def conv2d(x, w, stride, padding):
    """x [N,H,W,C], w [kh,kw,C,O]. padding 'valid' or 'same' (TF rule: total pad
    max((out-1)*s + k - in, 0), top/left = total // 2, the odd extra pixel bottom/right)."""
    kh, kw, c, o = w.shape
    n, h, wd, _ = x.shape
    if padding == "same":
        oh, ow = -(-h // stride), -(-wd // stride)
        ph = max((oh - 1) * stride + kh - h, 0)
        pw = max((ow - 1) * stride + kw - wd, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = x[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]
    return (cols.reshape(n * oh * ow, kh * kw * c) @ w.reshape(kh * kw * c, o)).reshape(n, oh, ow, o)


def pool(x, k, s, op):
    n, h, w, c = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    win = np.stack([x[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s, :]
                    for i in range(k) for j in range(k)], 0)
    return win.max(0) if op == "max" else win.mean(0)


relu = lambda t: np.maximum(t, 0)


class FaceResNet:
    MEAN_RGB = (122.782, 117.001, 104.298)

    def __init__(self, weights, dtype=np.float32):
        self.p = {k: v.astype(dtype) for k, v in weights.items()}
        self.dtype = dtype

    def conv_layer(self, x, prefix, stride, relu_out, padding):
        p = self.p
        y = conv2d(x, p[prefix + "/conv/filters"], stride, padding) + p[prefix + "/conv/bias"]
        y = y * p[prefix + "/scale/weights"] + p[prefix + "/scale/biases"]
        return relu(y) if relu_out else y

    def residual(self, x, prefix):
        y = self.conv_layer(x, prefix + "/conv1", 1, True, "same")
        y = self.conv_layer(y, prefix + "/conv2", 1, False, "same")
        return relu(y + x)

    def residual_down(self, x, prefix):
        y = self.conv_layer(x, prefix + "/conv1", 2, True, "valid")
        y = self.conv_layer(y, prefix + "/conv2", 1, False, "same")
        sc = pool(x, 2, 2, "avg")
        if sc.shape[1:3] != y.shape[1:3]:  # branch is one smaller: zero row at bottom, zero col at right
            assert sc.shape[1] == y.shape[1] + 1 and sc.shape[2] == y.shape[2] + 1
            y = np.pad(y, ((0, 0), (0, 1), (0, 1), (0, 0)))
        if sc.shape[3] != y.shape[3]:  # channels doubled: zeros appended after the C inputs
            assert y.shape[3] == 2 * sc.shape[3]
            sc = np.concatenate([sc, np.zeros_like(sc)], axis=3)
        return relu(sc + y)

    def preprocess(self, crops_nchw):
        """crops [N,3,150,150] RGB 0..255 -> network input NHWC, (x - mean) / 255."""
        x = np.transpose(crops_nchw, (0, 2, 3, 1)).astype(self.dtype)
        return (x - np.asarray(self.MEAN_RGB, dtype=self.dtype)) / self.dtype(255)

    def forward(self, crops_nchw, trace=None):
        x = self.preprocess(crops_nchw)
        x = self.conv_layer(x, "conv32_down", 2, True, "valid")          # 150 -> 72
        x = pool(x, 3, 2, "max")                                          # 72 -> 35
        for name in ["conv32_1", "conv32_2", "conv32_3"]:
            x = self.residual(x, name)
        x = self.residual_down(x, "conv64_down")                          # 35 -> 17, 32 -> 64
        for name in ["conv64_1", "conv64_2", "conv64_3"]:
            x = self.residual(x, name)
        x = self.residual_down(x, "conv128_down")                         # 17 -> 8, 64 -> 128
        for name in ["conv128_1", "conv128_2"]:
            x = self.residual(x, name)
        x = self.residual_down(x, "conv256_down")                         # 8 -> 4 (branch 3 + pad)
        for name in ["conv256_1", "conv256_2"]:
            x = self.residual(x, name)
        x = self.residual_down(x, "conv256_down_out")                     # 4 -> 2 (branch 1 + pad)
        if trace is not None:
            trace.append(("final feature map", x.shape))
        x = x.mean(axis=(1, 2))                                           # [N,256]
        return x @ self.p["fc"]                                           # [N,128]


# ---------------------------------------------------------------- crops re-created with numpy
def rebuild_crops(skimage_data, names, lfw_indices, box):
    from PIL import Image  # only to decode the PNG
    astro = np.asarray(Image.open(os.path.join(skimage_data, "astronaut.png")).convert("RGB"))
    (r0, r1), (c0, c1) = box["rows"], box["cols"]
    crops = {"astronaut": astro[r0:r1, c0:c1]}
    lfw = np.load(os.path.join(skimage_data, "lfw_subset.npy"))

    def coords(n_out, n_in):
        s = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        s = np.clip(s, 0, n_in - 1)
        i0 = np.floor(s).astype(np.int64)
        return i0, np.minimum(i0 + 1, n_in - 1), s - i0

    for i in lfw_indices:
        img = lfw[i]
        y0, y1, fy = coords(150, img.shape[0])
        x0, x1, fx = coords(150, img.shape[1])
        fx_, fy_ = fx[None, :], fy[:, None]
        top = (1 - fx_) * img[y0][:, x0] + fx_ * img[y0][:, x1]
        bot = (1 - fx_) * img[y1][:, x0] + fx_ * img[y1][:, x1]
        v = (1 - fy_) * top + fy_ * bot
        g = np.clip(np.floor(255 * v + 0.5), 0, 255).astype(np.uint8)
        crops[f"lfw_{i}"] = np.repeat(g[:, :, None], 3, axis=2)
    out = []
    for nm in names:
        if nm.endswith("_mirror"):
            out.append(crops[nm[:-len("_mirror")]][:, ::-1])
        else:
            out.append(crops[nm])
    return np.transpose(np.stack(out), (0, 3, 1, 2)).astype(np.float32)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "tests", "data", "face_api"))
    ap.add_argument("--float64", action="store_true")
    ap.add_argument("--skimage-data", default=None)
    args = ap.parse_args()

    weights, wmeta = read_safetensors(os.path.join(args.data, "face_recognition.safetensors"))
    weights = dequantise(weights)
    case, meta = read_safetensors(os.path.join(args.data, "identity_case.safetensors"))
    cfg = json.loads(wmeta["config"])
    names = json.loads(meta["names"])
    crops, ref = case["crops"], case["descriptors"].astype(np.float64)
    assert tuple(cfg["mean"]) == FaceResNet.MEAN_RGB and cfg["input_size"] == 150
    print(f"{len(weights)} weight tensors, {sum(v.size for v in weights.values())} floats; "
          f"{crops.shape[0]} crops {crops.shape}")

    if args.skimage_data:
        rebuilt = rebuild_crops(args.skimage_data, names, json.loads(meta["lfw_indices"]),
                                json.loads(meta["astronaut_box"]))
        ndiff = int((rebuilt != crops).sum())
        print(f"crops rebuilt with numpy from {args.skimage_data}: {ndiff} differing values")
        if ndiff:
            return 1

    net = FaceResNet(weights, np.float64 if args.float64 else np.float32)
    trace = []
    out = net.forward(crops, trace).astype(np.float64)
    print(f"forward in {'float64' if args.float64 else 'float32'}; {trace[0][0]} {trace[0][1]}")
    cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
    mad = np.abs(out - ref).max(1)
    rel = np.linalg.norm(out - ref, axis=1) / np.linalg.norm(ref, axis=1)
    print(f"{'name':18s} {'max|diff|':>10s} {'rel L2':>10s} {'cosine':>12s} {'1-cosine':>10s} {'|desc|':>8s}")
    for i, nm in enumerate(names):
        print(f"{nm:18s} {mad[i]:10.3e} {rel[i]:10.3e} {cos[i]:12.9f} {1 - cos[i]:10.3e} "
              f"{np.linalg.norm(ref[i]):8.4f}")
    print(f"overall max|diff| {mad.max():.3e}, max rel L2 {rel.max():.3e}, min cosine {cos.min():.9f} "
          f"(1-cos {1 - cos.min():.2e})")

    # identity structure of the package's descriptors: image vs its mirror vs other people
    un = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    C = un @ un.T
    D = np.linalg.norm(ref[:, None] - ref[None], axis=2)
    person = [nm[:-len("_mirror")] if nm.endswith("_mirror") else nm for nm in names]
    same = np.array([[person[i] == person[j] and i != j for j in range(len(names))] for i in range(len(names))])
    diff = np.array([[person[i] != person[j] for j in range(len(names))] for i in range(len(names))])
    print(f"same person (image vs mirror): cosine {C[same].min():.4f}..{C[same].max():.4f} "
          f"(mean {C[same].mean():.4f}); euclid {D[same].min():.4f}..{D[same].max():.4f} (mean {D[same].mean():.4f})")
    print(f"different people:              cosine {C[diff].min():.4f}..{C[diff].max():.4f} "
          f"(mean {C[diff].mean():.4f}); euclid {D[diff].min():.4f}..{D[diff].max():.4f} (mean {D[diff].mean():.4f})")
    i, j = np.unravel_index(np.where(diff, D, np.inf).argmin(), D.shape)
    print(f"closest different-people pair: {names[i]} / {names[j]}: euclid {D[i, j]:.4f}, cosine {C[i, j]:.4f}")
    ia = [k for k, p in enumerate(person) if p == "astronaut"]
    io = [k for k, p in enumerate(person) if p != "astronaut"]
    print(f"astronaut (colour) vs LFW (grey): euclid {D[np.ix_(ia, io)].min():.4f}..{D[np.ix_(ia, io)].max():.4f}")
    nearest_ok = sum(person[int(np.argsort(D[i])[1])] == person[i] for i in range(len(names)))
    print(f"nearest other descriptor is the same person for {nearest_ok}/{len(names)} crops; "
          f"every mirror pair closer than every cross pair: {bool(D[same].max() < D[diff].min())}")
    return 0 if cos.min() >= 0.99999 else 1


if __name__ == "__main__":
    sys.exit(main())
