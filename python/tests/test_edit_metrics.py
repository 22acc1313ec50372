"""Metrics and editors from Python against NumPy computations of their definitions."""

import numpy as np
import pytest

import ganinv
from conftest import IMAGES


def test_psnr_is_the_definition(generator):
    a = generator.synthesis(generator.mapping(generator.seed_z(1, count=2)))
    b = generator.synthesis(generator.mapping(generator.seed_z(9, count=2)))
    mse = ((a.astype(np.float64) - b) ** 2).reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(ganinv.metrics.psnr(a, b), 10 * np.log10(4.0 / mse), rtol=1e-12)
    assert ganinv._ganinv._debug_addresses()["a"] == a.ctypes.data  # read in place


def test_ssim_of_an_image_with_itself_is_one_and_drops_with_noise(generator):
    a = generator.synthesis(generator.mapping(generator.seed_z(2)))
    noisy = (a + np.random.RandomState(0).normal(0, 0.3, a.shape)).astype(np.float32)
    assert ganinv.metrics.ssim(a, a)[0] == pytest.approx(1.0)
    assert ganinv.metrics.ssim(a, noisy)[0] < 0.9
    with pytest.raises(ValueError, match=r"b: expected a float32 array of shape \[1, 1, 32, 32\]"):
        ganinv.metrics.ssim(a, noisy[:, :, :16])


def test_apply_direction_and_style_mix_are_their_definitions(generator):
    ws = generator.mapping(generator.seed_z(0, count=2))
    other = generator.mapping(generator.seed_z(5))
    direction = np.random.RandomState(1).randn(generator.w_dim).astype(np.float32)
    moved = ganinv.edit.apply_direction(ws, direction, 2.0, layers=(1, 3))
    expected = ws.copy()
    expected[:, 1:3] += 2.0 * direction
    np.testing.assert_allclose(moved, expected, rtol=1e-6)
    mixed = ganinv.edit.style_mix(ws, other, 4, generator.num_ws)
    expected = ws.copy()
    expected[:, 4:] = other[0, 4:]
    np.testing.assert_array_equal(mixed, expected)


def test_sefa_directions_are_orthonormal_and_round_trip(generator, tmp_path):
    d = ganinv.edit.sefa(generator, count=5)
    rows = d.directions.astype(np.float64)
    assert rows.shape == (5, generator.w_dim)
    np.testing.assert_allclose(rows @ rows.T, np.eye(5), atol=1e-5)
    assert d.method == "sefa" and np.all(np.diff(d.eigenvalues) <= 0)
    d.save(str(tmp_path / "sefa.safetensors"))
    again = ganinv.edit.load_directions(str(tmp_path / "sefa.safetensors"))
    np.testing.assert_array_equal(again.directions, d.directions)
    ws = generator.mapping(generator.seed_z(0))
    np.testing.assert_allclose(d.apply(ws, 0, 3.0), ganinv.edit.apply_direction(ws, d.directions[0], 3.0 * d.sigma(0)))


def test_ganspace_stddev_matches_its_samples(generator):
    d = ganinv.edit.ganspace(generator, count=3, samples=2000, seed=4)
    assert d.directions.shape == (3, generator.w_dim) and d.method == "ganspace"
    assert np.all(d.stddev > 0) and np.all(np.diff(d.stddev) <= 0)


def test_images_round_trip_through_files(tmp_path, generator):
    pixels = ganinv.load_image(str(IMAGES[0]))
    assert pixels.dtype == np.uint8 and pixels.ndim == 3
    ganinv.save_image(str(tmp_path / "copy.png"), pixels)
    np.testing.assert_array_equal(ganinv.load_image(str(tmp_path / "copy.png")), pixels)
    img = generator.synthesis(generator.mapping(generator.seed_z(0)))
    ganinv.save_image(str(tmp_path / "gen.png"), img)
    expected = np.clip(img[0].astype(np.float32) * np.float32(127.5) + np.float32(128), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(ganinv.load_image(str(tmp_path / "gen.png"))[:, :, 0], expected[0])
    with pytest.raises(ValueError, match="image: expected a uint8 image"):
        ganinv.save_image(str(tmp_path / "bad.png"), pixels.astype(np.int32))


def test_tensors_round_trip_through_safetensors(tmp_path, generator):
    ws = generator.mapping(generator.seed_z(3))
    ganinv.save_tensors(str(tmp_path / "code.safetensors"), {"ws": ws})
    np.testing.assert_array_equal(ganinv.load_tensors(str(tmp_path / "code.safetensors"))["ws"], ws)
