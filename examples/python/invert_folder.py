#!/usr/bin/env python3
"""Inverts every image of a folder, edits the codes along the first SeFa directions and saves a
grid: one row per image (target, reconstruction, then the edits at -3..+3 sigma).

    python examples/python/invert_folder.py --model models/fmnist32.safetensors \
        --dir examples/images --out out/python --steps 200
"""

import argparse
import pathlib
import sys

import numpy as np

import ganinv


def to_pixels(image):
    """float [C, R, R] in [-1, 1] -> uint8 [R, R, C], as ganinv.save_image converts."""
    scaled = np.clip(image.astype(np.float32) * np.float32(127.5) + np.float32(128), 0, 255)
    return scaled.astype(np.uint8).transpose(1, 2, 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dir", required=True, help="folder of PNG/JPEG/BMP images")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--direction", type=int, default=0, help="SeFa direction to edit along")
    args = parser.parse_args()

    g = ganinv.Generator.load(args.model)
    paths = sorted(p for p in pathlib.Path(args.dir).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
    if not paths:
        sys.exit(f"no images in {args.dir}")
    targets = np.stack([ganinv.load_image(str(p)) for p in paths])
    res = ganinv.invert(g, targets, steps=args.steps, progress=True)
    print(f"inverted {len(paths)} images in {res.seconds:.1f} s: mean PSNR {np.mean(res.psnr):.2f} dB, "
          f"mean SSIM {np.mean(res.ssim):.3f}")

    directions = ganinv.edit.sefa(g, count=args.direction + 1)
    alphas = [-3, -1.5, 1.5, 3]
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, path in enumerate(paths):
        edits = [g.synthesis(directions.apply(res.ws[i : i + 1], args.direction, a))[0] for a in alphas]
        target = ganinv.image_to_tensor(targets[i], g.channels)[0]
        row = [to_pixels(x) for x in [target, res.images[i], *edits]]
        rows.append(np.concatenate(row, axis=1))
        ganinv.save_tensors(str(out / f"{path.stem}.safetensors"), {"ws": np.ascontiguousarray(res.ws[i : i + 1])})
    grid = np.ascontiguousarray(np.concatenate(rows, axis=0))
    ganinv.save_image(str(out / "grid.png"), grid)
    print(f"wrote {out / 'grid.png'} ({len(paths)} rows: target, reconstruction, edits at {alphas} sigma)")


if __name__ == "__main__":
    main()
