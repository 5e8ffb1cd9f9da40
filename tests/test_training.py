"""fastlstm.training: the Dense head and MSE against finite differences, clipping against its
definition, and SGD/Adam against Keras's own optimizers (when keras is installed)."""

import os

import numpy as np
import pytest
from conftest import numerical_gradient

from fastlstm.training import (
    SGD,
    Adam,
    Dense,
    batch_indices,
    clip_by_global_norm,
    clip_by_value,
    make_optimizer,
    mse_loss,
)


def test_dense_and_mse_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    dense = Dense(5, 3, dtype=np.float64, seed=1)
    x = rng.standard_normal((4, 5))
    t = rng.standard_normal((4, 3))

    def loss():
        return mse_loss(dense.forward(x), t)[0]

    value, d_pred = mse_loss(dense.forward(x), t)
    np.testing.assert_allclose(value, np.mean((x @ dense.weight.T + dense.bias - t) ** 2))
    dx = dense.backward(d_pred)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(dense.grads["weight"], numerical_gradient(loss, dense.weight),
                               rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(dense.grads["bias"], numerical_gradient(loss, dense.bias),
                               rtol=1e-7, atol=1e-10)


def test_dense_init_is_glorot_uniform_and_seeded():
    a, b = Dense(30, 20, seed=3), Dense(30, 20, seed=3)
    np.testing.assert_array_equal(a.weight, b.weight)
    limit = np.sqrt(6 / 50)
    assert np.all(np.abs(a.weight) <= limit) and a.weight.std() > limit / 3
    np.testing.assert_array_equal(a.bias, 0)
    assert a.weight.dtype == np.float32


def test_dense_survives_pickle_with_its_views():
    import pickle

    dense = Dense(3, 2, dtype=np.float64, seed=0)
    copy = pickle.loads(pickle.dumps(dense))
    copy.flat[:] = 1.0
    np.testing.assert_array_equal(copy.weight, 1.0)  # the views follow the buffer
    np.testing.assert_array_equal(copy.bias, 1.0)


def test_clip_by_value_and_global_norm():
    g = [np.array([3.0, -4.0]), np.array([12.0])]
    clip_by_value(g, 5.0)
    np.testing.assert_array_equal(g[0], [3.0, -4.0])
    np.testing.assert_array_equal(g[1], [5.0])
    g = [np.array([3.0, -4.0]), np.array([12.0])]
    norm = clip_by_global_norm(g, 6.5)
    assert norm == pytest.approx(13.0)
    np.testing.assert_allclose(np.concatenate(g), np.array([3.0, -4.0, 12.0]) / 2)
    g = [np.array([0.1])]
    clip_by_global_norm(g, 1.0)
    np.testing.assert_array_equal(g[0], [0.1])  # below the bound: untouched


def test_batches_cover_every_sample_once_and_are_seeded():
    batches = batch_indices(10, 4, np.random.default_rng(0))
    assert [len(b) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(10))
    again = batch_indices(10, 4, np.random.default_rng(0))
    for a, b in zip(batches, again):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.concatenate(batch_indices(5, 2)), np.arange(5))


@pytest.mark.parametrize("call, match", [
    (lambda: Adam(learning_rate=0), "learning_rate"),
    (lambda: Adam(beta_1=1.0), "beta_1"),
    (lambda: SGD(momentum=-0.1), "momentum"),
    (lambda: SGD(learning_rate="fast"), "learning_rate"),
    (lambda: make_optimizer("rmsprop", 0.1), "optimizer"),
    (lambda: batch_indices(10, 0), "batch_size"),
    (lambda: Dense(0, 3), "in_features"),
])
def test_bad_arguments(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("name, ours, kwargs", [
    ("adam", lambda: Adam(0.01), dict(learning_rate=0.01)),
    ("sgd", lambda: SGD(0.05), dict(learning_rate=0.05)),
    ("sgd", lambda: SGD(0.05, momentum=0.9), dict(learning_rate=0.05, momentum=0.9)),
    ("sgd", lambda: SGD(0.05, momentum=0.9, nesterov=True),
     dict(learning_rate=0.05, momentum=0.9, nesterov=True)),
    ("adam", lambda: Adam(0.01, global_clipnorm=0.5), dict(learning_rate=0.01,
                                                          global_clipnorm=0.5)),
    ("adam", lambda: Adam(0.01, clipvalue=0.3), dict(learning_rate=0.01, clipvalue=0.3)),
])
def test_optimizers_match_keras(name, ours, kwargs):
    keras = _keras()
    rng = np.random.default_rng(0)
    p0 = [rng.standard_normal(7), rng.standard_normal(3)]
    grads = [[rng.standard_normal(7), rng.standard_normal(3)] for _ in range(5)]
    opt = ours()
    params = [p.copy() for p in p0]
    for g in grads:
        opt.step(params, [x.copy() for x in g])
    cls = keras.optimizers.Adam if name == "adam" else keras.optimizers.SGD
    kopt = cls(**kwargs)
    variables = [keras.Variable(p.copy(), dtype="float64") for p in p0]
    for g in grads:
        kopt.apply_gradients([(keras.ops.convert_to_tensor(x, dtype="float64"), v)
                              for x, v in zip(g, variables)])
    for ours_p, v in zip(params, variables):
        np.testing.assert_allclose(ours_p, keras.ops.convert_to_numpy(v), rtol=1e-6,
                                   atol=1e-9)
