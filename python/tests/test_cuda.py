"""The CUDA path of the package (a generator loaded with device="cuda"): the same numbers as the CPU
and as `ganinv invert --device cuda`, CUDA tensors read in place, results handed over through DLPack
without copies, work ordered on the caller's stream, clear errors. Skipped where no CUDA device is
usable (ganinv.cuda_available() is False: CI has none; the GPU machine runs them)."""

import threading
import time

import numpy as np
import pytest

import ganinv
from conftest import IMAGES, MODEL, relative_l2

pytestmark = pytest.mark.skipif(not ganinv.cuda_available(), reason="no usable CUDA device (or a CPU-only build)")

# fp32 on the GPU sums in another order than the CPU: images agree to ~1e-6 relative on the demo
# model; the bounds leave a margin without hiding a wrong layer (that is > 1e-2).
IMAGE_RTOL = 1e-4


@pytest.fixture(scope="module")
def gpu():
    return ganinv.Generator.load(str(MODEL), device="cuda")


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this PyTorch has no CUDA")
    return torch


def load_targets(paths):
    return np.stack([ganinv.load_image(str(p)) for p in paths])


def test_properties(gpu, generator):
    assert gpu.device == "cuda:0" and "device='cuda:0'" in repr(gpu)
    assert "sm_" in gpu.device_name and "fp32" in gpu.device_name
    for name in ("z_dim", "w_dim", "num_ws", "resolution", "channels", "style_dim"):
        assert getattr(gpu, name) == getattr(generator, name)


def test_host_arrays_give_numpy_results_equal_to_the_cpu(gpu, generator):
    z = generator.seed_z(3, count=4)
    ws_cpu, ws_gpu = generator.mapping(z, psi=0.7), gpu.mapping(z, psi=0.7)
    assert isinstance(ws_gpu, np.ndarray) and ws_gpu.dtype == np.float32
    assert relative_l2(ws_gpu, ws_cpu) <= 1e-5
    for mode in ("const", "none"):
        img = gpu.synthesis(ws_cpu, noise_mode=mode)
        assert isinstance(img, np.ndarray) and img.shape == (4, gpu.channels, gpu.resolution, gpu.resolution)
        assert relative_l2(img, generator.synthesis(ws_cpu, noise_mode=mode)) <= IMAGE_RTOL, mode


def test_cuda_tensors_are_read_in_place_and_results_handed_over(gpu, generator, torch):
    ws_np = generator.mapping(generator.seed_z(7, count=2))
    ws = torch.from_numpy(ws_np).cuda()
    out = gpu.synthesis(ws)
    assert ganinv._ganinv._debug_addresses()["ws"] == ws.data_ptr()
    assert not isinstance(out, np.ndarray)
    assert tuple(out.__dlpack_device__()) == (2, 0)  # kDLCUDA, device 0
    img = torch.from_dlpack(out)
    assert img.is_cuda and img.dtype == torch.float32 and img.is_contiguous()
    assert img.data_ptr() == ganinv._ganinv._debug_addresses()["return"]  # wrapped, not copied
    assert relative_l2(img.cpu().numpy(), generator.synthesis(ws_np)) <= IMAGE_RTOL

    z = torch.from_numpy(generator.seed_z(8, count=3)).cuda()
    ws_out = torch.from_dlpack(gpu.mapping(z))
    assert ganinv._ganinv._debug_addresses()["z"] == z.data_ptr()
    assert ws_out.is_cuda and ws_out.shape == (3, gpu.num_ws, gpu.w_dim)
    assert relative_l2(ws_out.cpu().numpy(), generator.mapping(z.cpu().numpy())) <= 1e-5


def test_work_is_ordered_on_the_callers_stream(gpu, generator, torch):
    # ws is written on a side stream only after a long sleep kernel; ganinv must wait for it, and
    # the clone queued on that stream after the call must see ganinv's result.
    if not hasattr(torch.cuda, "_sleep"):
        pytest.skip("this PyTorch has no torch.cuda._sleep")
    ws_np = generator.mapping(generator.seed_z(9, count=2))
    expected = generator.synthesis(ws_np)
    source = torch.from_numpy(ws_np).cuda()
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        ws = torch.zeros_like(source)
        torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU time before ws gets its values
        ws.copy_(source)
        img = torch.from_dlpack(gpu.synthesis(ws, stream=side.cuda_stream)).clone()
    side.synchronize()
    assert relative_l2(img.cpu().numpy(), expected) <= IMAGE_RTOL

    # PyTorch's default stream is the legacy default stream: stream=None orders against it.
    ws = torch.zeros_like(source)
    torch.cuda._sleep(200_000_000)
    ws.copy_(source)
    img = torch.from_dlpack(gpu.synthesis(ws)).clone()
    torch.cuda.synchronize()
    assert relative_l2(img.cpu().numpy(), expected) <= IMAGE_RTOL


def test_a_released_result_returns_to_the_pool_after_its_consumers_work(gpu, generator, torch):
    # Python drops result A while its consumer stream still has work queued (a long sleep). ganinv
    # may reuse A's block in its next call, so that call's work must wait for the consumer's queue
    # as it stood at the release. Observed directly, whatever block the pool picks: the next call's
    # completion, queued on a third stream, is still pending while the consumer sleeps. Control: the
    # same sequence with A kept alive completes at once.
    if not hasattr(torch.cuda, "_sleep"):
        pytest.skip("this PyTorch has no torch.cuda._sleep")
    ws = torch.from_numpy(generator.mapping(generator.seed_z(11, count=4))).cuda()
    consumer, other = torch.cuda.Stream(), torch.cuda.Stream()

    def next_call_waits(release):
        torch.cuda.synchronize()
        with torch.cuda.stream(consumer):
            a = torch.from_dlpack(gpu.synthesis(ws, stream=consumer.cuda_stream))
            torch.cuda._sleep(1_000_000_000)  # ~0.5 s of GPU time queued behind A's use
            a.add_(1.0)
        if release:
            del a
        with torch.cuda.stream(other):
            b = torch.from_dlpack(gpu.synthesis(ws, stream=other.cuda_stream))
            done = torch.cuda.Event()
            done.record(other)
        time.sleep(0.05)
        pending = not done.query()
        torch.cuda.synchronize()
        assert done.query() and b.shape[0] == 4
        return pending

    assert not next_call_waits(release=False)  # nothing released: no reason to wait
    assert next_call_waits(release=True)  # A released: the next call waits for its consumer


def test_invert_on_cuda_equals_the_cli(gpu, cli, tmp_path):
    paths = IMAGES[:2]
    steps, seed = 12, 5
    cli("invert", "--model", MODEL, "--out", tmp_path, "--space", "wplus", "--steps", steps, "--seed", seed,
        "--device", "cuda", "--image", *paths)
    res = ganinv.invert(gpu, load_targets(paths), space="wplus", steps=steps, seed=seed, progress=False)
    for i, p in enumerate(paths):
        reference = ganinv.load_tensors(str(tmp_path / (p.stem + ".safetensors")))
        assert relative_l2(res.ws[i], reference["ws"][0]) <= 1e-5, p.name
    assert res.loss_history.shape == (steps, len(paths))


def test_invert_on_cuda_is_close_to_the_cpu(gpu, generator):
    targets = load_targets(IMAGES[:2])
    a = ganinv.invert(generator, targets, steps=20, seed=3, progress=False)
    b = ganinv.invert(gpu, targets, steps=20, seed=3, progress=False)
    assert relative_l2(b.ws, a.ws) <= 1e-3
    np.testing.assert_allclose(b.psnr, a.psnr, atol=0.05)


def test_invert_takes_cuda_targets(gpu, generator, torch):
    floats = np.concatenate([ganinv.image_to_tensor(im, gpu.channels) for im in load_targets(IMAGES[:2])])
    a = ganinv.invert(gpu, floats, steps=5, progress=False)
    cuda_targets = torch.from_numpy(floats).cuda()
    b = ganinv.invert(gpu, cuda_targets, steps=5, progress=False)
    assert ganinv._ganinv._debug_addresses()["targets"] == cuda_targets.data_ptr()
    # Not bit-equal: the backward's style-gradient sums use float atomics (docs/cuda.md, Determinism).
    assert relative_l2(b.ws, a.ws) <= 1e-5


def test_the_gil_is_released_during_a_cuda_inversion(gpu):
    targets = load_targets(IMAGES[:1])
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    ganinv.invert(gpu, targets, steps=2, progress=False)  # warm-up: first-use costs out of the way
    thread = threading.Thread(target=count)
    thread.start()
    start = time.perf_counter()
    ganinv.invert(gpu, targets, steps=300, progress=False)
    end = time.perf_counter()
    done.set()
    thread.join()
    during = [t for t in ticks if start < t < end]
    assert len(during) >= max(3, int(0.3 * (end - start) / 0.0015)), (len(during), end - start)


def test_torch_autograd_on_cuda(gpu, generator, torch):
    import ganinv.torch as gtorch

    ws_np = generator.mapping(generator.seed_z(13, count=2))
    ws = torch.from_numpy(ws_np).cuda().requires_grad_(True)
    img = gtorch.Synthesis(gpu)(ws)
    assert img.is_cuda
    assert relative_l2(img.detach().cpu().numpy(), generator.synthesis(ws_np)) <= IMAGE_RTOL
    weights = torch.from_numpy(np.random.RandomState(4).randn(*img.shape).astype(np.float32)).cuda()
    (img * weights).sum().backward()
    grad = ws.grad.cpu().numpy()
    # ganinv's own gradient on the GPU (same call), and the CPU's
    expected_gpu = torch.from_dlpack(gpu._synthesis_backward(ws.detach(), weights)).cpu().numpy()
    assert relative_l2(grad, expected_gpu) <= 1e-5  # float atomics: equal up to summation order
    assert relative_l2(grad, generator._synthesis_backward(ws_np, weights.cpu().numpy())) <= 1e-4
    # central differences along random directions, as test_torch.py does on the CPU
    w64 = weights.cpu().numpy().astype(np.float64)
    for seed in range(3):
        v = np.random.RandomState(20 + seed).randn(*ws_np.shape)
        plus = (ws_np + 3e-3 * v / np.linalg.norm(v)).astype(np.float32)
        minus = (ws_np - 3e-3 * v / np.linalg.norm(v)).astype(np.float32)
        numeric = ((gpu.synthesis(plus).astype(np.float64) - gpu.synthesis(minus)) * w64).sum()
        analytic = (grad.astype(np.float64) * (plus.astype(np.float64) - minus)).sum()
        assert analytic == pytest.approx(numeric, rel=1e-2, abs=3e-5), seed


def test_precisions(gpu, generator):
    ws = generator.mapping(generator.seed_z(14, count=2))
    reference = generator.synthesis(ws)
    for precision, bound in (("tf32", 2e-2), ("bf16", 5e-2)):
        g = ganinv.Generator.load(str(MODEL), device="cuda", precision=precision)
        assert precision in g.device_name
        assert relative_l2(g.synthesis(ws), reference) <= bound, precision


def test_bad_cuda_arguments_are_clear(gpu, generator, torch):
    ws = torch.from_numpy(generator.mapping(generator.seed_z(1))).cuda()
    with pytest.raises(ValueError, match="ws: expected an array in host memory, got a CUDA array"):
        generator.synthesis(ws)  # the CPU generator
    with pytest.raises(ValueError, match=r"ws: expected a float32 array .* got dtype float64"):
        gpu.synthesis(ws.double())
    with pytest.raises(ValueError, match="ws: .*C-contiguous"):
        gpu.synthesis(ws.repeat(1, 2, 1)[:, ::2])  # every other layer: strided
    with pytest.raises(ganinv.ShapeError, match=r"ws: expected a float32 array of shape \[N, "):
        gpu.synthesis(ws[:, :1])
    with pytest.raises(ValueError, match="cuda:99"):
        ganinv.Generator.load(str(MODEL), device="cuda:99")
    with pytest.raises(ganinv.IoError, match="missing.safetensors"):
        ganinv.Generator.load("missing.safetensors", device="cuda")
    with pytest.raises(ValueError, match="targets: expected a float32 array"):
        ganinv.invert(gpu, torch.zeros((1, 32, 32, 1), dtype=torch.uint8).cuda(), steps=1, progress=False)
