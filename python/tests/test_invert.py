"""ganinv.invert: the same numbers as `ganinv invert` for the same options and seed, inputs as
float or uint8 images, progress callbacks, and the GIL released while it runs."""

import threading
import time

import numpy as np
import pytest

import ganinv
from conftest import IMAGES, MODEL, relative_l2


def load_targets(paths):
    return np.stack([ganinv.load_image(str(p)) for p in paths])


@pytest.mark.parametrize(
    "space,optimizer,extra",
    [("wplus", "adam", {}), ("w", "adam", {"schedule": False}), ("z", "adam", {"optimize_noise": True}),
     # the hybrid's schedule (a 20% warm-up, no exploration noise), as `ganinv invert --init encoder:E` uses it
     ("wplus", "adam", {"lr_rampup": 0.2, "w_noise": 0.0}),
     # L-BFGS's line search turns last-bit differences into different codes (0.08 apart when the
     # extension was built with nanobind's default -Os): this case checks the build flags too.
     ("w", "lbfgs", {}), ("wplus", "lbfgs", {"lbfgs_history": 4})],
)
def test_invert_equals_the_cli(generator, cli, tmp_path, space, optimizer, extra):
    paths = IMAGES[:2]
    steps, seed = 12, 5
    args = ["invert", "--model", MODEL, "--out", tmp_path, "--space", space, "--optimizer", optimizer,
            "--steps", steps, "--seed", seed]
    if extra.get("optimize_noise"):
        args.append("--optimize-noise")
    if extra.get("schedule") is False:
        args.append("--no-schedule")
    for key in ("lr_rampup", "lr_rampdown", "w_noise"):
        if key in extra:
            args += ["--" + key.replace("_", "-"), extra[key]]
    if "lbfgs_history" in extra:
        args += ["--lbfgs-history", extra["lbfgs_history"]]
    cli(*args, "--image", *paths)

    res = ganinv.invert(generator, load_targets(paths), space=space, optimizer=optimizer, steps=steps, seed=seed,
                        progress=False, **extra)
    for i, p in enumerate(paths):
        reference = ganinv.load_tensors(str(tmp_path / (p.stem + ".safetensors")))
        assert relative_l2(res.ws[i], reference["ws"][0]) <= 1e-6, p.name
    assert res.loss_history.shape == (steps, len(paths))
    assert res.images.shape == (len(paths), generator.channels, generator.resolution, generator.resolution)
    # The summary's PSNR (float images, data range 2) is what ganinv.metrics.psnr gives.
    targets = np.concatenate([ganinv.image_to_tensor(ganinv.load_image(str(p)), generator.channels) for p in paths])
    np.testing.assert_allclose(res.psnr, ganinv.metrics.psnr(np.clip(res.images, -1, 1), targets), rtol=1e-9)
    summary = (tmp_path / "summary.md").read_text()
    for value in res.psnr:
        assert f"{value:.2f}" in summary


def test_float_and_uint8_targets_agree(generator):
    images = load_targets(IMAGES[:1])
    floats = ganinv.image_to_tensor(images[0], generator.channels)
    a = ganinv.invert(generator, images, steps=3, progress=False)
    b = ganinv.invert(generator, floats, steps=3, progress=False)
    np.testing.assert_array_equal(a.ws, b.ws)
    np.testing.assert_array_equal(a.loss_history, b.loss_history)


def test_loss_decreases_and_callback_sees_every_report(generator):
    reports = []
    res = ganinv.invert(generator, load_targets(IMAGES[:1]), steps=30, progress=lambda s, t, l: reports.append((s, t, l)))
    assert [r[0] for r in reports] == list(range(1, 31))
    assert all(t == 30 for _, t, _ in reports)
    assert res.loss_history[-1, 0] < res.loss_history[0, 0]
    assert reports[-1][2][0] == pytest.approx(res.loss_history[-1, 0])


def test_callback_exception_stops_the_run(generator):
    def fail(step, total, losses):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        ganinv.invert(generator, load_targets(IMAGES[:1]), steps=5, progress=fail)


def test_bad_arguments(generator):
    targets = load_targets(IMAGES[:1])
    with pytest.raises(ganinv.ValueError, match="unknown space 'y'"):
        ganinv.invert(generator, targets, space="y", steps=2, progress=False)
    with pytest.raises(ganinv.ValueError, match="unknown optimizer 'sgd'"):
        ganinv.invert(generator, targets, optimizer="sgd", steps=2, progress=False)
    with pytest.raises(ValueError, match=r"targets: expected .*\[N, 32, 32, C\]"):
        ganinv.invert(generator, targets[:, :16], steps=2, progress=False)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        ganinv.invert(generator, targets, steps=0, progress=False)
    with pytest.raises(ValueError, match=r"lr_rampup and lr_rampdown are fractions of the run in \[0, 1\]"):
        ganinv.invert(generator, targets, steps=2, lr_rampdown=1.5, progress=False)
    with pytest.raises(ValueError, match="w_noise must be >= 0"):
        ganinv.invert(generator, targets, steps=2, w_noise=-0.1, progress=False)


def test_gil_is_released_while_inverting(generator):
    targets = load_targets(IMAGES[:2])
    done = threading.Event()
    result = {}

    def run():
        result["res"] = ganinv.invert(generator, targets, steps=40, progress=False)
        done.set()

    worker = threading.Thread(target=run)
    ticks = 0
    worker.start()
    while not done.is_set():  # this thread runs Python while the inversion computes
        ticks += 1
        time.sleep(0.001)
    worker.join()
    assert result["res"].steps_run == 40
    assert ticks >= 10, f"the main thread ran only {ticks} times during {result['res'].seconds:.2f} s"
