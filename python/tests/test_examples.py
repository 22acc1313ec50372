"""The scripts of examples/python run and write what they promise."""

import subprocess
import sys

import numpy as np

import ganinv
from conftest import IMAGES, MODEL, SOURCE_DIR


def test_invert_folder_example(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for p in IMAGES[:2]:
        (images / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, str(SOURCE_DIR / "examples" / "python" / "invert_folder.py"),
                          "--model", str(MODEL), "--dir", str(images), "--out", str(out), "--steps", "5"],
                         check=True, capture_output=True, text=True)
    assert "inverted 2 images" in run.stdout
    grid = ganinv.load_image(str(out / "grid.png"))
    assert grid.shape[:2] == (2 * 32, 6 * 32)
    code = ganinv.load_tensors(str(out / f"{IMAGES[0].stem}.safetensors"))["ws"]
    assert code.shape[0] == 1 and np.isfinite(code).all()
