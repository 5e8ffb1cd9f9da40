"""LSTMRegressor's training epoch and predict as single kernel calls (csrc/model.c) against the
batch-by-batch Python loop (LSTMLayer.forward/backward, the NumPy head and optimizers): the
same batches give the same weights, losses and predictions, on every ISA path."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from fastlstm import LSTMRegressor, NonFiniteLossError, _core  # noqa: E402
from fastlstm.training import SGD, Adam  # noqa: E402


def _data(n=150, T=9, F=2, k=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, T, F))
    y = np.sin(X[:, :, 0].sum(axis=1, keepdims=True)) + 0.1 * rng.standard_normal((n, k))
    return X, y[:, 0] if k == 1 else y


def _fit(kernel, X, y, **kwargs):
    est = LSTMRegressor(**{"hidden_size": 6, "epochs": 3, "batch_size": 16,
                           "random_state": 3, "dtype": "float64", **kwargs})
    est._kernel_loop = kernel
    return est.fit(X, y)


def _rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


CONFIGS = [
    dict(),
    dict(validation_split=0.2, activation="relu"),
    dict(num_layers=2, bidirectional=True, validation_split=0.25),
    dict(num_layers=3, activation="linear", optimizer="sgd", learning_rate=0.02,
         clip_value=0.05),
    dict(optimizer="sgd", momentum=0.9, learning_rate=0.01, clip_norm=0.3),
    dict(optimizer=lambda: SGD(0.01, momentum=0.5, nesterov=True), shuffle=False),
    dict(optimizer=lambda: Adam(0.003, beta_1=0.8, beta_2=0.99, epsilon=1e-5),
         bidirectional=True),
    dict(early_stopping=True, patience=1, validation_split=0.2, epochs=6),
]


@pytest.mark.parametrize("kwargs", CONFIGS, ids=lambda k: ",".join(sorted(k)) or "default")
def test_kernel_epochs_equal_the_python_loop_float64(isa, kwargs):
    X, y = _data(k=2 if "momentum" in kwargs else 1)
    make = kwargs.get("optimizer")
    if callable(make):  # an optimizer object: a fresh one for each fit
        fast_opt, ref_opt = make(), make()
        fast = _fit(True, X, y, **{**kwargs, "optimizer": fast_opt})
        ref = _fit(False, X, y, **{**kwargs, "optimizer": ref_opt})
        assert fast_opt.iterations == ref_opt.iterations > 0
    else:
        fast, ref = _fit(True, X, y, **kwargs), _fit(False, X, y, **kwargs)
    assert _rel(fast.lstm_.flat, ref.lstm_.flat) < 1e-10
    assert _rel(fast.head_.flat, ref.head_.flat) < 1e-10
    # the last batch's gradients are left in the gradient buffers by both
    assert _rel(fast.lstm_.grad_flat, ref.lstm_.grad_flat) < 1e-8
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(fast.history_[key], ref.history_[key], rtol=1e-10)
    assert fast.best_epoch_ == ref.best_epoch_
    np.testing.assert_allclose(fast.predict(X), ref.predict(X), rtol=1e-10, atol=1e-12)


def test_kernel_epochs_float32_follow_float64():
    X, y = _data(seed=1)
    fast = _fit(True, X, y, dtype="float32", validation_split=0.2)
    ref = _fit(False, X, y, dtype="float32", validation_split=0.2)
    assert _rel(fast.lstm_.flat, ref.lstm_.flat) < 1e-4
    np.testing.assert_allclose(fast.history_["val_loss"], ref.history_["val_loss"], rtol=1e-4)


def test_bias_hh_stays_zero_and_its_gradient_is_zero():
    X, y = _data()
    est = _fit(True, X, y, num_layers=2, bidirectional=True)
    for name, value in est.lstm_.parameters():
        if name.startswith("bias_hh"):
            assert not value.any() and not est.lstm_.grads[name].any()


def test_warm_start_continues_like_the_python_loop():
    X, y = _data()
    fast = _fit(True, X, y, warm_start=True, epochs=2)
    ref = _fit(False, X, y, warm_start=True, epochs=2)
    fast.fit(X, y)
    ref.fit(X, y)
    assert _rel(fast.lstm_.flat, ref.lstm_.flat) < 1e-10


@pytest.mark.parametrize("kernel", [True, False])
def test_non_finite_loss_stops_both_loops_alike(kernel):
    X, y = _data(60)
    est = LSTMRegressor(hidden_size=4, epochs=5, standardize=False, optimizer="sgd",
                        learning_rate=1e30, random_state=0)
    est._kernel_loop = kernel
    with pytest.raises(NonFiniteLossError, match="epoch 0"):
        est.fit(X, y * 1e30)
    assert np.isfinite(est.lstm_.flat).all() and np.isfinite(est.head_.flat).all()


def test_an_optimizer_of_ones_own_runs_in_python():
    class Halving(SGD):
        def _update(self, p, g, v):
            p -= self.learning_rate * 0.5 * g

    X, y = _data(60)
    est = LSTMRegressor(hidden_size=4, epochs=2, optimizer=Halving(0.01), random_state=0,
                        dtype="float64")
    est.fit(X, y)
    ref = LSTMRegressor(hidden_size=4, epochs=2, optimizer=SGD(0.005), random_state=0,
                        dtype="float64").fit(X, y)
    assert _rel(est.lstm_.flat, ref.lstm_.flat) < 1e-10


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_predict_in_one_call_equals_the_layer_path_across_row_chunks(isa, dtype, tol):
    # 1,500 steps of 40 units: a chunk of the prediction holds a few rows, so 23 windows take
    # several chunks (the last one short)
    X, y = _data(23, T=1500, F=1, seed=2)
    est = LSTMRegressor(hidden_size=40, epochs=1, num_layers=2, bidirectional=True,
                        random_state=0, dtype=dtype).fit(X[:5, :20], y[:5])
    Xs = est._scale_x(X, est.lstm_.dtype)
    rows = _core.model_predict_scratch_size(dtype, est._model_dims(), 1500, 23)
    assert rows > 0
    np.testing.assert_allclose(est._predict_scaled(Xs), est._forward(Xs, training=False),
                               rtol=tol, atol=tol)


def _windows(n=150, T=9, F=2, seed=0):
    """Windows of different lengths (1 .. T, both ends included) and their targets."""
    X, y = _data(n, T, F, seed=seed)
    lengths = np.random.default_rng(seed + 10).integers(1, T + 1, n)
    lengths[:2] = (1, T)
    return [X[i, :lengths[i]] for i in range(n)], y


@pytest.mark.parametrize("kwargs", [CONFIGS[0], CONFIGS[2], CONFIGS[3], CONFIGS[4], CONFIGS[7]],
                         ids=lambda k: ",".join(sorted(k)) or "default")
def test_kernel_epochs_on_windows_of_different_lengths_equal_the_python_loop(isa, kwargs):
    """Each batch sorted by length in the kernel (fl_steps), against the Python loop's
    LSTMLayer.forward/backward with lengths: weights, losses, predictions."""
    windows, y = _windows()
    if "momentum" in kwargs:
        y = np.stack([y, -y], axis=1)
    fast, ref = _fit(True, windows, y, **kwargs), _fit(False, windows, y, **kwargs)
    assert _rel(fast.lstm_.flat, ref.lstm_.flat) < 1e-10
    assert _rel(fast.head_.flat, ref.head_.flat) < 1e-10
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(fast.history_[key], ref.history_[key], rtol=1e-10)
    np.testing.assert_allclose(fast.predict(windows), ref.predict(windows), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_predict_with_lengths_in_one_call_equals_the_layer_path_across_row_chunks(isa, dtype,
                                                                                  tol):
    # as the chunk test above, with lengths 1 .. 1500: several chunks, each sorted apart
    X, y = _data(23, T=1500, F=1, seed=2)
    lengths = np.random.default_rng(5).integers(1, 1501, 23)
    lengths[3] = 1500
    est = LSTMRegressor(hidden_size=40, epochs=1, num_layers=2, bidirectional=True,
                        random_state=0, dtype=dtype).fit(X[:5, :20], y[:5])
    Xs = est._scale_x(X, est.lstm_.dtype)
    np.testing.assert_allclose(est._predict_scaled(Xs, lengths),
                               est._predict_lengths(Xs, lengths), rtol=tol, atol=tol)


def test_kernel_refuses_lengths_outside_the_steps():
    X, y = _data(40)
    est = _fit(True, X, y, epochs=1)
    Xs = est._scale_x(X, est.lstm_.dtype)
    for bad in (np.full(40, 10), np.full(40, -1), np.ones(39)):
        with pytest.raises(ValueError, match="lengths"):
            est._predict_scaled(Xs, bad)
    from fastlstm.regressor import _EpochKernel
    from fastlstm.training import make_optimizer
    ys = np.ascontiguousarray(y.reshape(-1, 1))
    run = _EpochKernel(est, make_optimizer("adam", 1e-3), np.ascontiguousarray(Xs), ys, Xs[:0],
                       ys[:0], np.full(40, 10))
    with pytest.raises(ValueError, match="lengths"):
        run.run(np.arange(40), 0)


def test_kernel_refuses_rows_outside_the_data():
    X, y = _data(40)
    est = _fit(True, X, y, epochs=1)
    from fastlstm.regressor import _EpochKernel
    from fastlstm.training import make_optimizer
    Xs = np.ascontiguousarray(X)
    ys = np.ascontiguousarray(y.reshape(-1, 1))
    run = _EpochKernel(est, make_optimizer("adam", 1e-3), Xs, ys, Xs[:0], ys[:0])
    with pytest.raises(ValueError, match="order"):
        run.run(np.array([0, 1, 40] + list(range(37))), 0)
    with pytest.raises(ValueError, match="order"):
        run.run(np.arange(39), 0)
