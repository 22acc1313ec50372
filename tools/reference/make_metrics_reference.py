#!/usr/bin/env python3
"""Reference image-quality values (MSE, MAE, PSNR, SSIM) from scikit-image on real photos.

Inputs: scikit-image's sample photos astronaut (RGB 512x512), camera (gray 512x512) and coffee
(RGB 400x600). To keep the fixtures small every photo is first shrunk 4x by exact 4x4 box
averaging (rounded to uint8): astronaut 128x128, camera 128x128, coffee 100x150. Each shrunk
photo is then degraded in fixed, seeded ways:
  noise  additive Gaussian noise, sigma 12 grey levels, numpy RandomState(seed), clipped, rounded
  blur   Gaussian blur, sigma 1.2 (scipy.ndimage, mode 'reflect', per channel), rounded
  jpeg   PIL JPEG round trip at quality 20 (astronaut only)
Both the shrunk clean photo and every degraded version are written as PNG into tests/data/edit/,
and the metrics are computed on the arrays read back from those PNGs, so the C++ test sees
exactly the same pixels.

Values per pair (written to tests/data/edit/metrics_reference.json):
  uint8 images, data_range 255:
    mse, mae          means over all pixels and channels (float64)
    psnr              skimage.metrics.peak_signal_noise_ratio(ref, test, data_range=255)
    ssim              skimage.metrics.structural_similarity(ref, test, gaussian_weights=True,
                      sigma=1.5, use_sample_covariance=False, data_range=255,
                      channel_axis=-1 for RGB)  -- Wang et al.'s 11x11 Gaussian window
  the same images mapped to [-1, 1] (x / 127.5 - 1, float64), data_range 2:
    psnr_range2, ssim_range2

Needs scikit-image 0.19 (+ scipy, PIL). On Debian without installing scikit-image system-wide:
    apt-get download python3-skimage python3-skimage-lib
    for f in python3-skimage*.deb; do dpkg-deb -x "$f" /tmp/skimage; done
    apt-get install python3-scipy python3-packaging python3-imageio python3-networkx python3-pywt python3-tifffile
    PYTHONPATH=/tmp/skimage/usr/lib/python3/dist-packages /usr/bin/python3 tools/reference/make_metrics_reference.py
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import scipy.ndimage as ndi
import skimage
import skimage.data
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT_DIR = os.path.join(ROOT, "tests", "data", "edit")


def shrink4(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[0] // 4, img.shape[1] // 4
    x = img[:h * 4, :w * 4].astype(np.float64)
    x = x.reshape(h, 4, w, 4, *img.shape[2:]).mean(axis=(1, 3))
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def add_noise(img: np.ndarray, seed: int) -> np.ndarray:
    rs = np.random.RandomState(seed)
    x = img.astype(np.float64) + 12.0 * rs.randn(*img.shape)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def blur(img: np.ndarray) -> np.ndarray:
    sig = (1.2, 1.2, 0) if img.ndim == 3 else 1.2  # no mixing across channels
    x = ndi.gaussian_filter(img.astype(np.float64), sigma=sig, mode="reflect")
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.array(Image.open(io.BytesIO(buf.getvalue())))


def save_png(name: str, img: np.ndarray) -> np.ndarray:
    path = os.path.join(OUT_DIR, name)
    Image.fromarray(img).save(path, optimize=True)
    return np.array(Image.open(path))  # read back: the metrics see the stored pixels


def metrics(ref: np.ndarray, test: np.ndarray) -> dict:
    rgb = ref.ndim == 3
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    if rgb:
        kw["channel_axis"] = -1
    r64, t64 = ref.astype(np.float64), test.astype(np.float64)
    rf, tf = r64 / 127.5 - 1.0, t64 / 127.5 - 1.0
    return {
        "mse": float(np.mean((r64 - t64) ** 2)),
        "mae": float(np.mean(np.abs(r64 - t64))),
        "psnr": float(peak_signal_noise_ratio(ref, test, data_range=255)),
        "ssim": float(structural_similarity(ref, test, data_range=255, **kw)),
        "psnr_range2": float(peak_signal_noise_ratio(rf, tf, data_range=2.0)),
        "ssim_range2": float(structural_similarity(rf, tf, data_range=2.0, **kw)),
    }


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    photos = {"astronaut": skimage.data.astronaut(), "camera": skimage.data.camera(),
              "coffee": skimage.data.coffee()}
    cases = []
    for seed, (name, full) in enumerate(photos.items()):
        clean = save_png(f"{name}_small.png", shrink4(full))
        degraded = {"noise": add_noise(clean, 1000 + seed), "blur": blur(clean)}
        if name == "astronaut":
            degraded["jpeg"] = jpeg(clean, 20)
        for kind, img in degraded.items():
            test = save_png(f"{name}_small_{kind}.png", img)
            m = metrics(clean, test)
            cases.append({"reference": f"{name}_small.png", "test": f"{name}_small_{kind}.png", **m})
            print(f"{name:9s} {kind:5s} {clean.shape}: PSNR {m['psnr']:.4f} dB  SSIM {m['ssim']:.6f}  "
                  f"(range 2: {m['psnr_range2']:.4f}, {m['ssim_range2']:.6f})")
    doc = {
        "source": "tools/reference/make_metrics_reference.py",
        "skimage_version": skimage.__version__,
        "ssim": "structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, "
                "K1=0.01, K2=0.03, channel_axis=-1 for RGB)",
        "cases": cases,
    }
    path = os.path.join(OUT_DIR, "metrics_reference.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
