#!/usr/bin/env python3
"""Reference SeFa directions for the demo generator, computed with NumPy (and checked with torch).

SeFa ("Closed-Form Factorization of Latent Semantics in GANs", Shen & Zhou, CVPR 2021) takes the
style-affine weights of the chosen synthesis layers, stacks them as the columns of a
[w_dim, sum(channels)] matrix A, scales every column (one output style channel) to unit length,
and uses the eigenvectors of A A^T (w_dim x w_dim), sorted by eigenvalue, as editing directions.
This script follows that recipe independently of the C++ code, so tests/unit/test_edit.cpp can
compare the two.

Layer selections written (one tensor each, [10, w_dim], rows = directions, largest first):
  directions              every modulated conv layer (ToRGB skipped): ganinv's default
  directions_w2_6         conv layers whose w index lies in [2, 6)
  directions_final_torgb  every conv layer plus the last ToRGB: the official code's 'all',
                          whose last layer index is the final ToRGB (the only consumer of the
                          last w)
plus eigenvalues_* [10] for each.

Run from the repository root with a Python that has numpy (and torch for the cross-check):
    /usr/bin/python3 tools/reference/make_sefa_reference.py
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import safetensors_lite  # noqa: E402

MODEL = os.path.join(ROOT, "models", "fmnist32.safetensors")
OUT = os.path.join(ROOT, "tests", "data", "edit", "sefa_fmnist32.safetensors")
TOP = 10


def layer_plan(cfg):
    """(name, w_index, is_torgb) of every modulated layer in execution order, as StyleGAN2 wires them."""
    layers = []
    w = 0
    res = 4
    while res <= cfg["img_resolution"]:
        if res == 4:
            layers.append((f"synthesis.b{res}.conv1", w, False))
            layers.append((f"synthesis.b{res}.torgb", w + 1, True))
            w += 1
        else:
            layers.append((f"synthesis.b{res}.conv0", w, False))
            layers.append((f"synthesis.b{res}.conv1", w + 1, False))
            layers.append((f"synthesis.b{res}.torgb", w + 2, True))
            w += 2
        res *= 2
    return layers


def sefa_numpy(tensors, names):
    # Columns = style channels: affine.weight is [channels, w_dim], so transpose before stacking.
    a = np.concatenate([tensors[n + ".affine.weight"].T for n in names], axis=1).astype(np.float32)
    a = a / np.linalg.norm(a, axis=0, keepdims=True)
    values, vectors = np.linalg.eig(a.dot(a.T))
    values, vectors = values.real, vectors.real  # symmetric input: eig's imaginary parts are 0
    order = np.argsort(-values)
    return values[order], vectors[:, order].T  # rows = directions


def sefa_torch64(tensors, names):
    import torch

    a = torch.cat([torch.from_numpy(tensors[n + ".affine.weight"]).double().t() for n in names], dim=1)
    a = a / a.norm(dim=0, keepdim=True)
    values, vectors = torch.linalg.eigh(a @ a.t())
    values, vectors = values.flip(0), vectors.flip(1)
    return values.numpy(), vectors.t().numpy()


def main():
    tensors = safetensors_lite.load_file(MODEL)
    cfg = safetensors_lite.load_config(MODEL)
    plan = layer_plan(cfg)
    num_ws = plan[-1][1] + 1
    selections = {
        "": [n for n, w, rgb in plan if not rgb],
        "_w2_6": [n for n, w, rgb in plan if not rgb and 2 <= w < 6],
        "_final_torgb": [n for n, w, rgb in plan if not rgb or w == num_ws - 1],
    }
    out = {}
    meta = {}
    for suffix, names in selections.items():
        values, dirs = sefa_numpy(tensors, names)
        try:
            tv, td = sefa_torch64(tensors, names)
            cos = np.abs(np.sum(dirs[:TOP] * td[:TOP], axis=1))
            print(f"directions{suffix}: numpy float32 vs torch float64 |cos| of top {TOP}: "
                  f"min {cos.min():.7f}; eigenvalue rel. diff {np.max(np.abs(values[:TOP] - tv[:TOP]) / tv[:TOP]):.2e}")
        except ImportError:
            print("torch not available: cross-check skipped")
        gaps = values[:TOP] - values[1:TOP + 1]
        print(f"  layers {names}")
        print(f"  eigenvalues {np.array2string(values[:TOP], precision=4)}")
        print(f"  smallest relative gap among the top 6: {np.min(gaps[:6] / values[:6]):.4f}")
        out["directions" + suffix] = dirs[:TOP].astype(np.float32)
        out["eigenvalues" + suffix] = values[:TOP].astype(np.float32)
        meta["layers" + suffix] = json.dumps(names)
    meta["source"] = "tools/reference/make_sefa_reference.py on models/fmnist32.safetensors"
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    safetensors_lite.save_file(out, OUT, meta)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
