"""ganinv.torch.Synthesis: forward equals g.synthesis, backward equals ganinv's gradient and
finite differences."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import ganinv.torch  # noqa: E402  (needs torch)


def test_forward_and_backward_through_ganinv(generator):
    ws_np = generator.mapping(generator.seed_z(6, count=2))
    ws = torch.from_numpy(ws_np.copy()).requires_grad_(True)
    synth = ganinv.torch.Synthesis(generator)
    img = synth(ws)
    np.testing.assert_array_equal(img.detach().numpy(), generator.synthesis(ws_np))
    weights = torch.from_numpy(np.random.RandomState(2).randn(*img.shape).astype(np.float32))
    (img * weights).sum().backward()
    expected = generator._synthesis_backward(ws_np, weights.numpy())
    np.testing.assert_array_equal(ws.grad.numpy(), expected)

    # Central differences along random directions of all coordinates: (f(ws + d) - f(ws - d)) vs
    # <grad, 2d>, d the perturbation as stored in float32.
    w64 = weights.numpy().astype(np.float64)
    grad = ws.grad.numpy().astype(np.float64)
    for seed in range(4):
        v = np.random.RandomState(10 + seed).randn(*ws_np.shape)
        plus = (ws_np + 3e-3 * v / np.linalg.norm(v)).astype(np.float32)
        minus = (ws_np - 3e-3 * v / np.linalg.norm(v)).astype(np.float32)
        numeric = ((generator.synthesis(plus).astype(np.float64) - generator.synthesis(minus)) * w64).sum()
        analytic = (grad * (plus.astype(np.float64) - minus)).sum()
        assert analytic == pytest.approx(numeric, rel=1e-2, abs=3e-5), seed


def test_optimising_ws_with_a_torch_optimizer_lowers_the_loss(generator):
    target = torch.from_numpy(generator.synthesis(generator.mapping(generator.seed_z(1))))
    ws = torch.from_numpy(generator.mapping(generator.seed_z(2))).requires_grad_(True)
    synth = ganinv.torch.Synthesis(generator)
    opt = torch.optim.Adam([ws], lr=0.05)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = ((synth(ws) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
