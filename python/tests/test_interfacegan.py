"""ganinv.edit.interfacegan against NumPy solutions of the same objectives, and its errors."""

import numpy as np
import pytest

import ganinv
from ganinv.edit import interfacegan


def labelled_codes(n=240, dim=8, seed=0, flip=0.1):
    """Gaussian codes labelled by a known hyperplane, with `flip` of the labels swapped (so that
    the classes overlap and the regularisation matters)."""
    rng = np.random.RandomState(seed)
    truth = rng.randn(dim)
    truth /= np.linalg.norm(truth)
    codes = rng.randn(n, dim).astype(np.float32)
    labels = (codes.astype(np.float64) @ truth + 0.4 > 0).astype(np.int64)
    swap = rng.rand(n) < flip
    labels[swap] = 1 - labels[swap]
    return codes, labels, truth


def unit_boundary(w, b):
    norm = np.linalg.norm(w)
    return w / norm, b / norm


def numpy_logistic(codes, labels, l2):
    """argmin mean log(1 + exp(-y (w.x + b))) + l2/2 |w|^2 (b unpenalised), by Newton's method."""
    x = np.hstack([codes.astype(np.float64), np.ones((len(codes), 1))])
    y = np.where(labels == 1, 1.0, -1.0)
    reg = np.full(x.shape[1], l2)
    reg[-1] = 0.0
    w = np.zeros(x.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(y * (x @ w)))  # sigma(-y m)
        g = reg * w - (x * (y * p)[:, None]).mean(axis=0)
        h = (x * (p * (1 - p))[:, None]).T @ x / len(x) + np.diag(reg + 1e-12)
        w -= np.linalg.solve(h, g)
    return unit_boundary(w[:-1], w[-1])


def numpy_svm(codes, labels, c):
    """argmin 1/2 |(w, b)|^2 + c sum max(0, 1 - y (w.x + b)) through its dual, a box-constrained
    quadratic program solved by accelerated projected gradient (not ganinv's coordinate descent)."""
    x = np.hstack([codes.astype(np.float64), np.ones((len(codes), 1))])
    y = np.where(labels == 1, 1.0, -1.0)
    q = (y[:, None] * x) @ (y[:, None] * x).T
    step = 1.0 / np.linalg.eigvalsh(q)[-1]
    alpha = prev = np.zeros(len(x))
    for k in range(1, 5001):
        v = alpha + (k - 1) / (k + 2) * (alpha - prev)
        prev, alpha = alpha, np.clip(v - step * (q @ v - 1.0), 0.0, c)
    w = (alpha * y) @ x
    return unit_boundary(w[:-1], w[-1])


def test_logistic_fit_is_the_regularised_log_loss_minimum():
    codes, labels, truth = labelled_codes()
    b = interfacegan.fit(codes, labels, method="logistic", l2=0.01)
    normal, offset = numpy_logistic(codes, labels, 0.01)
    assert b.normal.dtype == np.float32 and b.normal.shape == (8,)
    np.testing.assert_allclose(b.normal, normal, atol=1e-6)
    assert b.offset == pytest.approx(offset, abs=1e-6)
    assert np.linalg.norm(b.normal.astype(np.float64)) == pytest.approx(1.0, abs=1e-6)


def test_svm_fit_is_the_hinge_loss_minimum():
    codes, labels, truth = labelled_codes(seed=1)
    b = interfacegan.fit(codes, labels, c=0.5, tolerance=1e-9, max_epochs=100000)
    normal, offset = numpy_svm(codes, labels, 0.5)
    np.testing.assert_allclose(b.normal, normal, atol=1e-4)
    assert b.offset == pytest.approx(offset, abs=1e-4)
    assert float(b.normal @ truth) > 0.9  # label 1 on the positive side, near the true normal
    scores = b.score(codes)
    assert b.train_accuracy == pytest.approx(np.mean((scores > 0) == (labels == 1)))
    np.testing.assert_allclose(scores, codes.astype(np.float64) @ b.normal.astype(np.float64) + b.offset, rtol=1e-6)


def test_label_encodings_agree():
    codes, labels, _ = labelled_codes(n=120, seed=2)
    reference = interfacegan.fit(codes, labels).normal
    signed = np.where(labels == 1, 1, -1)
    for other in (labels.astype(bool), labels.astype(np.uint8), labels.astype(np.uint64), signed.astype(np.int8),
                  signed.astype(np.int32), signed):
        np.testing.assert_array_equal(interfacegan.fit(codes, other).normal, reference)
    strided = np.stack([labels, labels], axis=1)[:, 0]  # a non-contiguous view
    np.testing.assert_array_equal(interfacegan.fit(codes, strided).normal, reference)


def test_from_scores_fits_the_top_and_bottom_ratio():
    codes, _, truth = labelled_codes(n=200, seed=3)
    scores = (codes.astype(np.float64) @ truth + 0.1 * np.random.RandomState(4).randn(200)).astype(np.float32)
    b = interfacegan.from_scores(codes, scores, ratio=0.25, seed=7)
    order = np.argsort(-scores, kind="stable")
    chosen = np.concatenate([order[:50], order[-50:]])
    expected = interfacegan.fit(np.ascontiguousarray(codes[chosen]), np.r_[np.ones(50, int), np.zeros(50, int)], seed=7)
    np.testing.assert_array_equal(b.normal, expected.normal)
    assert b.offset == expected.offset


def test_conditional_direction_is_the_projection():
    rng = np.random.RandomState(5)
    primal, c1, c2 = (v.astype(np.float32) for v in rng.randn(3, 16))
    d = interfacegan.conditional(primal, [c1, c2])
    conds = np.stack([c1, c2]).astype(np.float64).T
    n = primal.astype(np.float64)
    n -= conds @ np.linalg.lstsq(conds, n, rcond=None)[0]
    np.testing.assert_allclose(d, n / np.linalg.norm(n), atol=1e-6)
    assert np.abs(conds.T @ d).max() < 1e-5  # the conditions' scores do not move along d


def test_bad_arguments_are_clear_errors():
    codes, labels, _ = labelled_codes(n=40, seed=6)
    with pytest.raises(ValueError, match=r"labels: expected integer or bool labels of shape \[40\].*got dtype float64"):
        interfacegan.fit(codes, labels.astype(np.float64))
    with pytest.raises(ValueError, match=r"labels: expected .* of shape \[40\].*got shape \[39\]"):
        interfacegan.fit(codes, labels[:39])
    bad = labels.copy()
    bad[3] = 2
    with pytest.raises(ganinv.ValueError, match=r"labels: label 3 is 2 \(expected 0/1 or -1/\+1\)"):
        interfacegan.fit(codes, bad)
    bad[3] = 2**40 + 1  # must not wrap around into a valid label
    with pytest.raises(ganinv.ValueError, match=r"labels: label 3 is 1099511627777 "):
        interfacegan.fit(codes, bad)
    unsigned = labels.astype(np.uint8)
    unsigned[3] = 255  # not -1
    with pytest.raises(ganinv.ValueError, match=r"labels: label 3 is 255 "):
        interfacegan.fit(codes, unsigned)
    with pytest.raises(ganinv.ValueError, match="both classes"):
        interfacegan.fit(codes, np.ones(40, dtype=int))
    with pytest.raises(ValueError, match=r"codes: expected a float32 array of shape \[N, \*\], got dtype float64"):
        interfacegan.fit(codes.astype(np.float64), labels)
    with pytest.raises(ValueError, match=r"codes: expected .*\[N, \*\], got shape \[40, 2, 4\]"):
        interfacegan.fit(codes.reshape(40, 2, 4), labels)
    with pytest.raises(ganinv.ValueError, match="unknown method 'svn' \\(svm or logistic\\)"):
        interfacegan.fit(codes, labels, method="svn")
    with pytest.raises(ganinv.ValueError, match="l2 is an option of method='logistic', not of method='svm'"):
        interfacegan.fit(codes, labels, l2=0.1)
    with pytest.raises(ganinv.ValueError, match="ratio must be in"):
        interfacegan.from_scores(codes, codes[:, 0].copy(), ratio=0.7)
    with pytest.raises(ValueError, match=r"conditions\[0\]: expected a float32 array of shape \[8\]"):
        interfacegan.conditional(codes[0], [codes[1, :4].copy()])
    with pytest.raises(ganinv.ValueError, match="linearly dependent"):
        interfacegan.conditional(codes[0], [codes[1], codes[1]])
