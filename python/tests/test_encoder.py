"""ganinv.Encoder: the shipped encoder of the demo model (models/fmnist32_encoder.safetensors),
the same codes as `ganinv encode`, the hybrid start of ganinv.invert, and the refusals."""

import numpy as np
import pytest

import ganinv
from conftest import IMAGES, MODEL, SOURCE_DIR

ENCODER = SOURCE_DIR / "models" / "fmnist32_encoder.safetensors"
TINY = SOURCE_DIR / "tests" / "data" / "stylegan2_tiny" / "generator.safetensors"


@pytest.fixture(scope="module")
def encoder():
    return ganinv.Encoder.load(str(ENCODER))


@pytest.fixture(scope="module")
def images():
    return np.stack([ganinv.load_image(str(p)) for p in IMAGES])  # uint8 [8, 32, 32, 1]


def test_shipped_encoder_fits_the_demo_model(encoder, generator):
    assert (encoder.num_ws, encoder.w_dim, encoder.resolution, encoder.channels) == (
        generator.num_ws, generator.w_dim, generator.resolution, generator.channels)
    assert encoder.architecture == "psp" and not encoder.iterative and encoder.iterations == 1
    assert encoder.num_params > 100_000
    assert "ganinv.Encoder(" in repr(encoder)


def test_encode_gives_codes_images_and_scores(encoder, generator, images):
    res = encoder.encode(generator, images)
    assert res.ws.shape == (8, generator.num_ws, generator.w_dim) and res.ws.dtype == np.float32
    assert res.images.shape == (8, 1, 32, 32)
    assert res.psnr_per_iteration.shape == (1, 8)
    np.testing.assert_allclose(res.psnr_per_iteration[-1], res.psnr)
    # The reconstructions are the generator's images of the codes (constant noise).
    np.testing.assert_allclose(res.images, generator.synthesis(res.ws), atol=1e-5)
    # A trained encoder, not a random one: far better than the mean code's image.
    assert np.mean(res.psnr) > 14.0
    # float32 input in [-1, 1] gives the same codes as the uint8 images it came from.
    as_float = np.stack([ganinv.image_to_tensor(im, 1)[0] for im in images])
    np.testing.assert_allclose(encoder.encode(generator, as_float).ws, res.ws, atol=1e-6)


def test_encode_matches_the_tool(encoder, generator, images, cli, tmp_path):
    cli("encode", "--model", MODEL, "--encoder", ENCODER, "--image", *IMAGES[:3], "--out", tmp_path)
    res = encoder.encode(generator, images[:3])
    for k, path in enumerate(IMAGES[:3]):
        codes = ganinv.load_tensors(str(tmp_path / (path.stem + ".safetensors")))["ws"]
        np.testing.assert_allclose(codes[0], res.ws[k], rtol=0, atol=1e-6)


def test_hybrid_inversion_starts_from_the_encoder(encoder, generator, images):
    start = encoder.encode(generator, images[:4])
    hybrid = ganinv.invert(generator, images[:4], init=start.ws, steps=20, progress=False)
    plain = ganinv.invert(generator, images[:4], steps=20, progress=False)
    assert np.mean(hybrid.psnr) > np.mean(plain.psnr)


RESTYLE = SOURCE_DIR / "models" / "fmnist32_restyle_encoder.safetensors"


def test_shipped_restyle_encoder_refines_the_shipped_encoders_codes(encoder, generator, images, cli, tmp_path):
    restyle = ganinv.Encoder.load(str(RESTYLE))
    assert restyle.iterative and restyle.iterations == 3 and restyle.bootstrap.startswith("fnv1a64:")
    assert encoder.bootstrap == ""
    res = restyle.encode(generator, images, iterations=2, bootstrap=encoder)
    assert res.psnr_per_iteration.shape == (2, 8)
    # Its passes improve on the bootstrapping encoder's one pass.
    assert np.mean(res.psnr_per_iteration[0]) > np.mean(encoder.encode(generator, images).psnr)
    # The same codes as the tool's.
    cli("encode", "--model", MODEL, "--encoder", RESTYLE, "--bootstrap", ENCODER, "--iterations", "2", "--image",
        IMAGES[0], "--out", tmp_path)
    codes = ganinv.load_tensors(str(tmp_path / (IMAGES[0].stem + ".safetensors")))["ws"]
    # (one image there, eight here: the same float sums in another order, through two passes)
    np.testing.assert_allclose(codes[0], res.ws[0], rtol=1e-5, atol=1e-4)
    # Trained to refine the shipped encoder's codes, it refuses to start from the mean code.
    with pytest.raises(ganinv.ValueError, match="trained to refine the codes of a single-pass encoder"):
        restyle.encode(generator, images)
    with pytest.raises(ganinv.ValueError, match="the bootstrapping encoder must be single-pass"):
        restyle.encode(generator, images, bootstrap=restyle)


def test_refusals(encoder, generator, images):
    with pytest.raises(ganinv.ValueError, match="the encoder is not iterative"):
        encoder.encode(generator, images, iterations=2)
    tiny = ganinv.Generator.load(str(TINY))
    with pytest.raises(ganinv.Error, match="was made for another generator"):
        encoder.encode(tiny, images)
    with pytest.raises(ganinv.FormatError, match="is not a ganinv encoder file"):
        ganinv.Encoder.load(str(MODEL))
    with pytest.raises(ValueError, match="images|targets"):
        encoder.encode(generator, np.zeros((1, 3, 32, 32), np.float32))
