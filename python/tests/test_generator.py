"""The generator from Python: properties, parity of mapping/synthesis with `ganinv generate
--out-tensor`, seeds, noise modes."""

import numpy as np
import pytest

import ganinv
from conftest import MODEL, relative_l2


def test_properties_match_the_model_file(generator):
    img = generator.synthesis(generator.mapping(generator.seed_z(0)))
    assert img.shape == (1, generator.channels, generator.resolution, generator.resolution)
    ws = generator.mapping(generator.seed_z(0, count=3))
    assert ws.shape == (3, generator.num_ws, generator.w_dim)
    assert generator.seed_z(0).shape == (1, generator.z_dim)
    assert "fmnist32" in repr(generator)


def test_seed_z_is_numpy_randomstate(generator):
    expected = np.stack([np.random.RandomState(s).randn(generator.z_dim) for s in (7, 8)]).astype(np.float32)
    np.testing.assert_array_equal(generator.seed_z(7, count=2), expected)


@pytest.mark.parametrize("psi,cutoff", [(1.0, None), (0.7, None), (0.5, 4)])
def test_mapping_and_synthesis_equal_the_cli(generator, cli, tmp_path, psi, cutoff):
    out = tmp_path / "gen.safetensors"
    args = ["generate", "--model", MODEL, "--seed", 11, "--count", 3, "--truncation-psi", psi,
            "--out", tmp_path / "gen.png", "--out-tensor", out]
    if cutoff is not None:
        args += ["--truncation-cutoff", cutoff]
    cli(*args)
    reference = ganinv.load_tensors(str(out))

    ws = generator.mapping(generator.seed_z(11, count=3), psi=psi, cutoff=cutoff)
    img = generator.synthesis(ws)
    assert relative_l2(ws, reference["ws"]) <= 1e-6
    assert relative_l2(img, reference["img"]) <= 1e-6


def test_noise_modes(generator, cli, tmp_path):
    ws = generator.mapping(generator.seed_z(3))
    const = generator.synthesis(ws)
    none = generator.synthesis(ws, noise_mode="none")
    random_a = generator.synthesis(ws, noise_mode="random", noise_seed=1)
    random_b = generator.synthesis(ws, noise_mode="random", noise_seed=1)
    np.testing.assert_array_equal(random_a, random_b)
    assert relative_l2(none, const) > 1e-4  # the noise changes the image
    out = tmp_path / "none.safetensors"
    cli("generate", "--model", MODEL, "--seed", 3, "--noise-mode", "none", "--out", tmp_path / "n.png",
        "--out-tensor", out)
    assert relative_l2(none, ganinv.load_tensors(str(out))["img"]) <= 1e-6
