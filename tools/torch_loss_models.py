"""PyTorch versions of the networks behind ganinv's perceptual losses, written for ganinv (no
code from LPIPS, torchvision or face-api): used as an independent autograd reference for the
C++ backward passes (tools/make_identity_grad_fixture.py) and as the GPU baseline of
benchmarks/gpu/bench_losses_torch.py.

- vgg16_hash_rule(): the VGG16 trunk of the LPIPS fixture (shared/fixtures/README.md rule).
- LpipsVgg: LPIPS-VGG v0.1 (ScalingLayer, relu1_2..relu5_3, channel normalisation with eps
  outside the sqrt, squared difference, 1x1 lin weights, spatial mean, sum over layers).
- FaceResNet: the dlib face-recognition ResNet as @vladmandic/face-api runs it
  (tools/README_face_api.md), from tools/convert_face_api.mjs output.
- identity_loss(): 1 - cosine of descriptors, with ganinv's input stage for 150x150 inputs.

Needs numpy and torch only.
"""
import json
import math
import struct

import numpy as np
import torch
import torch.nn.functional as F

_DT = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "U8": np.uint8, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """(dict name -> np.ndarray, metadata). U8 tensors with <name>.__scale/__min (the quantised
    face-api layout) are dequantised: float32(q * scale + min), evaluated in float64."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    raw = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt = np.dtype(_DT[info["dtype"]]).newbyteorder("<")
        raw[name] = np.frombuffer(buf, dtype=dt, count=(e - b) // dt.itemsize, offset=8 + n + b).reshape(info["shape"]).copy()
    out = {}
    for name, t in raw.items():
        if name.endswith(".__scale") or name.endswith(".__min"):
            continue
        if name + ".__scale" in raw:
            t = (t.astype(np.float64) * float(raw[name + ".__scale"]) + float(raw[name + ".__min"])).astype(np.float32)
        out[name] = t
    return out, meta


# ---------------------------------------------------------------- VGG16 / LPIPS
VGG_CONVS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
             (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
VGG_POOL_BEFORE = [0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]
VGG_TORCH_INDEX = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
_M64 = (1 << 64) - 1


def _splitmix64(x):
    """Vectorised splitmix64 over a uint64 numpy array."""
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(_M64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _hash_uniform(k, n):
    with np.errstate(over="ignore"):
        z = _splitmix64((np.uint64(k) << np.uint64(40)) | np.arange(n, dtype=np.uint64))
    return ((z >> np.uint64(40)).astype(np.float64) * 2.0 ** -23 - 1.0).astype(np.float32)


def vgg16_hash_rule():
    """[(weight [O,I,3,3], bias [O])] * 13 from the fixture's trunk rule."""
    layers = []
    for l, (ci, co) in enumerate(VGG_CONVS):
        w = _hash_uniform(2 * l, co * ci * 9) * np.float32(math.sqrt(6.0 / (ci * 9)))
        b = _hash_uniform(2 * l + 1, co) * np.float32(0.1)
        layers.append((torch.from_numpy(w.reshape(co, ci, 3, 3)), torch.from_numpy(b)))
    return layers


def vgg16_from_file(path):
    """torchvision names features.{idx}.weight|bias (tools/convert_torchvision_vgg16.py)."""
    t, _ = read_safetensors(path)
    return [(torch.from_numpy(t[f"features.{i}.weight"]), torch.from_numpy(t[f"features.{i}.bias"])) for i in VGG_TORCH_INDEX]


class LpipsVgg(torch.nn.Module):
    TAPS = (1, 3, 6, 9, 12)

    def __init__(self, trunk, lins):
        super().__init__()
        self.w = torch.nn.ParameterList([torch.nn.Parameter(w, requires_grad=False) for w, _ in trunk])
        self.b = torch.nn.ParameterList([torch.nn.Parameter(b, requires_grad=False) for _, b in trunk])
        self.lins = torch.nn.ParameterList([torch.nn.Parameter(l.reshape(1, -1, 1, 1), requires_grad=False) for l in lins])
        self.register_buffer("shift", torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([.458, .448, .450]).view(1, 3, 1, 1))

    def features(self, x):
        x = (x - self.shift) / self.scale
        out = []
        for l in range(13):
            if VGG_POOL_BEFORE[l]:
                x = F.max_pool2d(x, 2, 2)
            x = F.relu(F.conv2d(x, self.w[l], self.b[l], padding=1))
            if l in self.TAPS:
                out.append(x)
            if l == self.TAPS[-1]:
                break
        return out

    @staticmethod
    def normalize(f):
        return f / (torch.sqrt(torch.sum(f * f, dim=1, keepdim=True)) + 1e-10)

    def forward(self, a, b, b_feats=None):
        """Per-image distances [N]. b_feats: precomputed normalised features of b."""
        fa = [self.normalize(f) for f in self.features(a)]
        fb = b_feats if b_feats is not None else [self.normalize(f) for f in self.features(b)]
        d = 0
        for k in range(5):
            d = d + F.conv2d((fa[k] - fb[k]) ** 2, self.lins[k]).mean(dim=(2, 3))
        return d.flatten()


# ---------------------------------------------------------------- face ResNet
FACE_BLOCKS = ([("conv32_%d" % i, False) for i in (1, 2, 3)] + [("conv64_down", True)]
               + [("conv64_%d" % i, False) for i in (1, 2, 3)] + [("conv128_down", True)]
               + [("conv128_%d" % i, False) for i in (1, 2)] + [("conv256_down", True)]
               + [("conv256_%d" % i, False) for i in (1, 2)] + [("conv256_down_out", True)])
FACE_MEAN = (122.782, 117.001, 104.298)


class FaceResNet(torch.nn.Module):
    def __init__(self, weights_path):
        super().__init__()
        t, _ = read_safetensors(weights_path)
        self.p = {}
        for name in ["conv32_down"] + [f"{b}/conv{k}" for b, _ in FACE_BLOCKS for k in (1, 2)]:
            w = torch.from_numpy(t[name + "/conv/filters"]).permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
            self.p[name] = (w, torch.from_numpy(t[name + "/conv/bias"]), torch.from_numpy(t[name + "/scale/weights"]),
                            torch.from_numpy(t[name + "/scale/biases"]))
        self.fc = torch.from_numpy(t["fc"])
        self.register_buffer("mean", torch.tensor(FACE_MEAN).view(1, 3, 1, 1))

    def to(self, *args, **kw):  # plain dict of tensors: move by hand
        self.p = {k: tuple(x.to(*args, **kw) for x in v) for k, v in self.p.items()}
        self.fc = self.fc.to(*args, **kw)
        return super().to(*args, **kw)

    def conv(self, x, name, stride, pad, relu):
        w, b, s, t = self.p[name]
        y = F.conv2d(x, w, b, stride=stride, padding=pad)
        y = y * s.view(1, -1, 1, 1) + t.view(1, -1, 1, 1)
        return F.relu(y) if relu else y

    def block(self, x, name, down):
        y = self.conv(x, name + "/conv1", 2 if down else 1, 0 if down else 1, True)
        y = self.conv(y, name + "/conv2", 1, 1, False)
        if not down:
            return F.relu(y + x)
        s = F.avg_pool2d(x, 2, 2)
        if s.shape[2] != y.shape[2]:
            y = F.pad(y, (0, 1, 0, 1))  # zero column right, zero row bottom
        if s.shape[1] != y.shape[1]:
            s = torch.cat([s, torch.zeros_like(s)], dim=1)
        return F.relu(s + y)

    def forward(self, rgb255):
        """[N, 3, 150, 150] RGB 0..255 -> [N, 128]."""
        x = (rgb255 - self.mean) / 255.0
        x = self.conv(x, "conv32_down", 2, 0, True)
        x = F.max_pool2d(x, 3, 2)
        for name, down in FACE_BLOCKS:
            x = self.block(x, name, down)
        return x.mean(dim=(2, 3)) @ self.fc


def identity_loss(net, pred, target_desc):
    """1 - cos per image for pred in [-1, 1] (150x150 RGB, ganinv's (x + 1) * 127.5 map)."""
    d = net((pred + 1.0) * 127.5)
    return 1.0 - F.cosine_similarity(d, target_desc, dim=1, eps=1e-30)
