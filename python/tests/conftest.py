"""Shared fixtures of the Python tests: the source tree's demo model and images, and the ganinv
tool (GANINV_CLI, set by the python_package ctest) for the parity tests."""

import os
import pathlib
import subprocess

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("GANINV_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
MODEL = SOURCE_DIR / "models" / "fmnist32.safetensors"
IMAGES = sorted((SOURCE_DIR / "examples" / "images").glob("*.png"))


@pytest.fixture(scope="session")
def generator():
    import ganinv

    return ganinv.Generator.load(str(MODEL))


@pytest.fixture(scope="session")
def cli():
    """Runs the ganinv tool: cli("generate", "--seed", "1", ...) -> CompletedProcess (checked)."""
    tool = os.environ.get("GANINV_CLI")
    if not tool:
        pytest.skip("GANINV_CLI is not set (the python_package ctest sets it to the built ganinv tool)")

    def run(*args):
        return subprocess.run([tool, *map(str, args)], check=True, capture_output=True, text=True)

    return run


def relative_l2(a, b):
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
