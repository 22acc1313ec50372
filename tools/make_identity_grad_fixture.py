#!/usr/bin/python3
"""Writes tests/data/face_api/identity_grad_case.safetensors: an autograd reference for the
C++ backward of the identity loss, from ganinv's own PyTorch port of the face ResNet
(tools/torch_loss_models.py), evaluated in float64.

pred   = crops astronaut, lfw_0 (identity_case.safetensors) mapped to [-1, 1], plus 0.01 * u_i with
         u_i the fixture hash rule's uniform for tensor index 99 (splitmix64((99 << 40) | i)):
         flat image regions make exactly tied max-pool windows, whose winner depends on the
         rounding of each implementation; the dither removes the ties so gradients compare
target = their mirrors, mapped the same way
loss_i = 1 - cos(desc(pred_i), desc(target_i)); grad = d(sum_i loss_i)/dpred

The port's forward is first checked against the package's descriptors (cosine >= 0.99999).
Usage: /usr/bin/python3 tools/make_identity_grad_fixture.py [--data tests/data/face_api]
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_loss_models import FaceResNet, _hash_uniform, identity_loss, read_safetensors  # noqa: E402


def write_safetensors(path, tensors, metadata):
    header, off, blobs = {"__metadata__": metadata}, 0, []
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text.encode() + b"".join(blobs))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(here, "..", "tests", "data", "face_api"))
    args = ap.parse_args()
    case, meta = read_safetensors(os.path.join(args.data, "identity_case.safetensors"))
    names = json.loads(meta["names"])
    net = FaceResNet(os.path.join(args.data, "face_recognition.safetensors")).to(torch.float64)

    crops = torch.from_numpy(case["crops"]).double()
    with torch.no_grad():
        d = net(crops)
    ref = torch.from_numpy(case["descriptors"]).double()
    cos = torch.nn.functional.cosine_similarity(d, ref, dim=1)
    print(f"torch port vs package descriptors: min cosine {cos.min().item():.12f}")
    if cos.min().item() < 0.99999:
        return 1

    idx = [names.index("astronaut"), names.index("lfw_0")]
    tidx = [names.index("astronaut_mirror"), names.index("lfw_0_mirror")]
    dither = torch.from_numpy(_hash_uniform(99, 2 * 3 * 150 * 150).reshape(2, 3, 150, 150)).double() * 0.01
    pred = (crops[idx] / 127.5 - 1.0).float().double() + dither.float().double()
    pred = pred.float().double().clone().requires_grad_(True)  # exactly the float32 input the C++ test builds
    target = crops[tidx] / 127.5 - 1.0
    with torch.no_grad():
        t_desc = net((target + 1.0) * 127.5)
    loss = identity_loss(net, pred, t_desc)
    loss.sum().backward()
    print(f"loss {loss.detach().numpy()}, |grad| {pred.grad.norm().item():.6g}")
    out = os.path.join(args.data, "identity_grad_case.safetensors")
    write_safetensors(out, {"loss": loss.detach().numpy(), "grad_pred": pred.grad.numpy()}, {
        "pred": "float32(float32(x / 127.5 - 1) + float32(0.01 * u_i)), x = crops astronaut, lfw_0 of "
                "identity_case.safetensors, u_i = hash-rule uniform of tensor 99 (not stored)",
        "target": "their mirrors, same map (not stored)",
        "loss": "1 - cos(desc(pred), desc(target)), desc of (x + 1) * 127.5",
        "grad_pred": "d(sum loss)/dpred by PyTorch autograd in float64 (tools/torch_loss_models.py)",
        "torch_version": torch.__version__,
    })
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
