"""fastlstm.interop: weights in and out of PyTorch and Keras 3, each conversion checked against the
other framework's own forward pass."""

import os
import warnings

import numpy as np
import pytest

import fastlstm
from fastlstm import LSTMLayer
from fastlstm import interop


def _torch():
    return pytest.importorskip("torch")


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def test_import_needs_neither_torch_nor_keras():
    import subprocess
    import sys
    code = ("import sys; sys.modules['torch'] = None; sys.modules['keras'] = None\n"
            "import fastlstm, fastlstm.interop as m\n"
            "try:\n    m.to_torch(fastlstm.LSTMLayer(2, 3))\nexcept ImportError as e:\n"
            "    assert \"pip install 'fastlstm[torch]'\" in str(e), e\n"
            "else:\n    raise SystemExit('no ImportError')\n"
            "try:\n    m.from_keras(object())\nexcept ImportError as e:\n"
            "    assert \"pip install 'fastlstm[keras]'\" in str(e), e\n"
            "else:\n    raise SystemExit('no ImportError')\n"
            "rng = __import__('numpy').random.default_rng(0)\n"
            "m.from_keras([rng.random((2, 12)), rng.random((3, 12)), rng.random(12)])\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- torch ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_from_torch_matches_torch_forward(num_layers, bidirectional, batch_first, dtype):
    torch = _torch()
    torch.manual_seed(0)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    I, H, T, B = 3, 4, 5, 2
    D = 2 if bidirectional else 1
    module = torch.nn.LSTM(I, H, num_layers, bidirectional=bidirectional,
                           batch_first=batch_first, dtype=tdtype)
    layer = interop.from_torch(module)
    assert layer.dtype == np.dtype(dtype) and layer.batch_first == batch_first
    assert (layer.num_layers, layer.bidirectional) == (num_layers, bidirectional)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(dtype)
    h0 = rng.standard_normal((num_layers * D, B, H)).astype(dtype)
    c0 = rng.standard_normal((num_layers * D, B, H)).astype(dtype)
    with torch.no_grad():
        y_t, (h_t, c_t) = module(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    y, (h_n, c_n) = layer.forward(x, (h0, c0), training=False)
    rtol, atol = (1e-4, 1e-6) if dtype == np.float32 else (1e-10, 1e-12)
    for name, ours, theirs in (("y", y, y_t), ("h_n", h_n, h_t), ("c_n", c_n, c_t)):
        assert ours.dtype == np.dtype(dtype), name
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=rtol, atol=atol, err_msg=name)

    # fastlstm -> torch -> fastlstm is exact, and to_torch's module runs the same forward.
    back = interop.to_torch(layer)
    assert back.weight_ih_l0.dtype == tdtype and back.batch_first == batch_first
    again = interop.from_torch(back)
    sd0, sd1 = layer.state_dict(), again.state_dict()
    assert sd0.keys() == sd1.keys()
    for name in sd0:
        np.testing.assert_array_equal(sd0[name], sd1[name], err_msg=name)
        assert sd1[name].dtype == np.dtype(dtype)
    with torch.no_grad():
        y_b, _ = back(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    np.testing.assert_array_equal(y_b.numpy(), y_t.numpy())


def test_from_torch_without_bias_dtype_override_and_dropout_warning():
    torch = _torch()
    torch.manual_seed(0)
    module = torch.nn.LSTM(2, 3, 2, bias=False, dropout=0.5)
    module.eval()
    with pytest.warns(UserWarning, match=r"dropout=0\.5"):
        layer = interop.from_torch(module, dtype=np.float64)
    assert layer.dtype == np.float64
    for name, value in layer.parameters():
        if name.startswith("bias"):
            assert not value.any(), name
    x = np.random.default_rng(0).standard_normal((4, 3, 2))
    with torch.no_grad():
        y_t, _ = module(torch.from_numpy(x).float())
    np.testing.assert_allclose(layer.forward(x, training=False)[0], y_t.numpy(), rtol=1e-4,
                               atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interop.from_torch(torch.nn.LSTM(2, 3))  # no dropout: no warning


def test_torch_bad_inputs():
    torch = _torch()
    with pytest.raises(TypeError, match="torch.nn.LSTM, got GRU"):
        interop.from_torch(torch.nn.GRU(2, 3))
    with pytest.raises(TypeError, match="got LSTMCell"):
        interop.from_torch(torch.nn.LSTMCell(2, 3))
    with pytest.raises(TypeError, match="got LSTMLayer"):
        interop.from_torch(LSTMLayer(2, 3))
    with pytest.raises(ValueError, match="proj_size=2"):
        interop.from_torch(torch.nn.LSTM(2, 3, proj_size=2))
    with pytest.raises(ValueError, match="activation='relu'"):
        interop.to_torch(LSTMLayer(2, 3, activation="relu"))
    with pytest.raises(TypeError, match="fastlstm.LSTMLayer, got LSTM"):
        interop.to_torch(torch.nn.LSTM(2, 3))
    with pytest.raises(TypeError, match="dtype"):
        interop.from_torch(torch.nn.LSTM(2, 3), dtype=np.int32)


# --- keras ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["tanh", "relu", "linear"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_from_keras_matches_keras_forward(activation, bidirectional):
    keras = _keras()
    keras.utils.set_random_seed(0)
    I, H, T, B = 3, 4, 6, 5
    x = np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32)

    def make(return_sequences=True):
        lstm = keras.layers.LSTM(H, activation=activation, return_sequences=return_sequences,
                                 bias_initializer="random_normal")
        kl = keras.layers.Bidirectional(lstm, merge_mode="concat") if bidirectional else lstm
        kl.build((None, T, I))
        return kl

    kl = make()
    expected = keras.ops.convert_to_numpy(kl(x))
    layer = interop.from_keras(kl)
    assert layer.batch_first and layer.activation == activation
    assert layer.bidirectional == bidirectional and layer.dtype == np.float32
    for name, value in layer.parameters():
        if name.startswith("bias_hh"):
            assert not value.any()
    y, (h_n, _) = layer.forward(x, training=False)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    # return_sequences=False is the last hidden state(s), [forward, backward].
    kl_last = make(return_sequences=False)
    kl_last.set_weights(kl.get_weights())
    last = np.concatenate([h_n[0], h_n[1]], axis=1) if bidirectional else h_n[-1]
    np.testing.assert_allclose(last, keras.ops.convert_to_numpy(kl_last(x)), rtol=1e-4, atol=1e-5)

    # to_keras_weights: the order Bidirectional.get_weights() uses; a fresh layer given them
    # computes the same outputs.
    weights = interop.to_keras_weights(layer)
    assert len(weights) == 3 * layer.num_directions
    for ours, theirs in zip(weights, kl.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    fresh = make()
    fresh.set_weights(weights)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fresh(x)), expected, rtol=1e-6,
                               atol=1e-7)
    # and the list form converts back to the same layer
    again = interop.from_keras(weights, activation=activation)
    for (name, a), (_, b) in zip(layer.parameters(), again.parameters()):
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_keras_masking_maps_to_lengths(bidirectional):
    """A Keras model with Masking on a right-padded batch: the converted layer with
    mask_lengths gives Keras's final states and its outputs at the real steps; past them
    Keras's LSTM repeats its last output, its Bidirectional gives zeros, fastlstm zeros."""
    keras = _keras()
    keras.utils.set_random_seed(2)
    I, H, T, B = 3, 4, 7, 4
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    lengths = np.array([7, 2, 5, 1])
    x[np.arange(T)[None, :] >= lengths[:, None]] = 0.0
    lstm = keras.layers.LSTM(H, return_sequences=True, return_state=True,
                             bias_initializer="random_normal")
    kl = keras.layers.Bidirectional(lstm, merge_mode="concat") if bidirectional else lstm
    inp = keras.Input((T, I))
    model = keras.Model(inp, kl(keras.layers.Masking(0.0)(inp)))
    out = [keras.ops.convert_to_numpy(v) for v in model(x)]
    layer = interop.from_keras(kl)
    got = interop.mask_lengths(x=x)
    np.testing.assert_array_equal(got, lengths)
    np.testing.assert_array_equal(interop.mask_lengths(np.any(x != 0, axis=-1)), lengths)
    y, (h_n, c_n) = layer.forward(x, lengths=got, training=False)
    real = np.arange(T)[None, :] < lengths[:, None]
    np.testing.assert_allclose(y[real], out[0][real], rtol=1e-4, atol=1e-5)
    assert not y[~real].any()
    last = out[0][np.arange(B), lengths - 1]
    expected_pad = 0.0 if bidirectional else np.broadcast_to(last[:, None], y.shape)
    np.testing.assert_allclose(np.where(real[..., None], 0, out[0]),
                               np.where(real[..., None], 0, expected_pad) + 0 * out[0],
                               atol=1e-6)
    D = layer.num_directions
    for d in range(D):  # Keras: h, c of each direction in order
        np.testing.assert_allclose(h_n[d], out[1 + 2 * d], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(c_n[d], out[2 + 2 * d], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="sequence 0 has a real step after a masked one"):
        interop.mask_lengths(np.array([[True, False, True]]))
    with pytest.raises(TypeError, match="give mask"):
        interop.mask_lengths()


def test_from_keras_without_bias_float64_and_weight_list():
    keras = _keras()
    keras.utils.set_random_seed(1)
    kl = keras.layers.LSTM(3, use_bias=False, return_sequences=True)
    kl.build((None, 4, 2))
    assert len(kl.get_weights()) == 2
    x = np.random.default_rng(1).standard_normal((2, 4, 2)).astype(np.float32)
    layer = interop.from_keras(kl, dtype=np.float64, input_size=2)
    assert layer.dtype == np.float64
    assert not any(v.any() for n, v in layer.parameters() if n.startswith("bias"))
    np.testing.assert_allclose(layer.forward(x, training=False)[0],
                               keras.ops.convert_to_numpy(kl(x)), rtol=1e-4, atol=1e-5)
    from_list = interop.from_keras(kl.get_weights())  # 2 arrays: no bias, tanh
    assert from_list.activation == "tanh" and not from_list.bidirectional
    np.testing.assert_array_equal(from_list.state_dict()["weight_ih_l0"], kl.get_weights()[0].T)


def test_to_keras_weights_multi_layer_needs_layer_index():
    keras = _keras()
    layer = LSTMLayer(3, 4, num_layers=2, bidirectional=True, batch_first=True, seed=0)
    with pytest.raises(ValueError, match=r"num_layers=2.*layer_index=k"):
        interop.to_keras_weights(layer)
    with pytest.raises(ValueError, match="layer_index=2 out of range"):
        interop.to_keras_weights(layer, layer_index=2)
    with pytest.raises(TypeError, match="layer_index must be an integer"):
        interop.to_keras_weights(layer, layer_index=1.0)
    # A Keras stack given the per-layer weights computes the layer's forward.
    x = np.random.default_rng(2).standard_normal((2, 5, 3)).astype(np.float32)
    stack = [keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))
             for _ in range(2)]
    model = keras.Sequential([keras.Input((5, 3))] + stack)
    for k, kl in enumerate(stack):
        w = interop.to_keras_weights(layer, layer_index=k)
        assert w[0].shape == ((3, 16) if k == 0 else (8, 16))
        kl.set_weights(w)
    np.testing.assert_allclose(layer.forward(x, training=False)[0],
                               model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_keras_bad_inputs():
    keras = _keras()

    def built(layer, shape=(None, 4, 2)):
        layer.build(shape)
        return layer

    with pytest.raises(TypeError, match="got GRU"):
        interop.from_keras(built(keras.layers.GRU(3)))
    with pytest.raises(TypeError, match="wrap a keras.layers.LSTM, got GRU"):
        interop.from_keras(built(keras.layers.Bidirectional(keras.layers.GRU(3))))
    with pytest.raises(TypeError, match="got str"):
        interop.from_keras("lstm")
    with pytest.raises(ValueError, match="merge_mode='sum'"):
        interop.from_keras(built(keras.layers.Bidirectional(keras.layers.LSTM(3),
                                                            merge_mode="sum")))
    with pytest.raises(ValueError, match="activation='sigmoid'"):
        interop.from_keras(built(keras.layers.LSTM(3, activation="sigmoid")))
    with pytest.raises(ValueError, match="recurrent_activation='hard_sigmoid'"):
        interop.from_keras(built(keras.layers.LSTM(3, recurrent_activation="hard_sigmoid")))
    with pytest.raises(ValueError, match="go_backwards=True.*reversed order"):
        interop.from_keras(built(keras.layers.LSTM(3, go_backwards=True)))
    with pytest.raises(ValueError, match="go_backwards=True"):
        interop.from_keras(built(keras.layers.Bidirectional(
            keras.layers.LSTM(3, go_backwards=True))))
    with pytest.raises(ValueError, match="not built"):
        interop.from_keras(keras.layers.LSTM(3))
    with pytest.raises(ValueError, match="activation='relu' was given"):
        interop.from_keras(built(keras.layers.LSTM(3)), activation="relu")
    with pytest.raises(ValueError, match="input_size=5"):
        interop.from_keras(built(keras.layers.LSTM(3)), input_size=5)
    with pytest.warns(UserWarning, match="recurrent_dropout=0.25"):
        interop.from_keras(built(keras.layers.LSTM(3, recurrent_dropout=0.25)))
    rng = np.random.default_rng(0)
    k, r, b = rng.random((2, 12)), rng.random((3, 12)), rng.random(12)
    with pytest.raises(ValueError, match="list of 5 arrays"):
        interop.from_keras([k, r, b, k, r])
    with pytest.raises(ValueError, match=r"recurrent_kernel: expected shape \(H, 4H\)"):
        interop.from_keras([k, r.T, b])
    with pytest.raises(ValueError, match=r"kernel: expected shape \(input_size, 12\)"):
        interop.from_keras([k.T, r, b])
    with pytest.raises(ValueError, match=r"bias: expected shape \(12,\)"):
        interop.from_keras([k, r, b[:4]])
    with pytest.raises(ValueError, match="activation: expected one of"):
        interop.from_keras([k, r, b], activation="elu")
    with pytest.raises(TypeError, match="fastlstm.LSTMLayer, got list"):
        interop.to_keras_weights([k, r, b])


# --- regressor_to_keras --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [dict(), dict(bidirectional=True),
                                    dict(num_layers=2, activation="relu"),
                                    dict(dtype="float64", bidirectional=True)])
def test_regressor_to_keras_predicts_the_same(kwargs, tmp_path):
    keras = _keras()
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6, 2)) * [3.0, 0.5] + [10.0, -2.0]
    Y = np.stack([X[:, -1, 0] + X[:, 0, 1], X[:, :, 1].sum(axis=1) * 5.0], axis=1) + 7.0
    est = fastlstm.LSTMRegressor(hidden_size=5, epochs=3, random_state=0, **kwargs).fit(X, Y)
    model = interop.regressor_to_keras(est)
    expected = est.predict(X)
    pred = model.predict(X.astype(np.float32), verbose=0)
    assert pred.shape == (40, 2)
    np.testing.assert_allclose(pred, expected, rtol=1e-4, atol=1e-4)
    standardize = type(model.get_layer("standardize")).__name__
    if kwargs.get("dtype") == "float64":
        # model.predict casts inputs to floatx (float32); calling the model does not, but Keras
        # (torch backend) still promotes float64 @ float64 to a float32 product in Dense.
        assert model.inputs[0].dtype == "float64" and standardize == "Rescaling"
        assert model.get_layer("head").kernel.dtype == "float64"
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model(X)), expected, rtol=1e-6,
                                   atol=1e-6)
    else:
        assert standardize == "Normalization"
    if not kwargs:  # Keras's own layers only: the model saves and loads
        path = tmp_path / "model.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        np.testing.assert_allclose(loaded.predict(X.astype(np.float32), verbose=0), pred,
                                   rtol=1e-6)


def test_regressor_to_keras_1d_y_2d_x_and_tiny_scale():
    _keras()
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 5))  # 2-D X: 5 steps of one feature
    y = X[:, -1] * 2.0 + 1.0
    est = fastlstm.LSTMRegressor(hidden_size=4, epochs=2, random_state=0).fit(X, y)
    model = interop.regressor_to_keras(est)
    pred = model.predict(X.astype(np.float32), verbose=0)
    assert pred.shape == (40, 1) and est.predict(X).shape == (40,)
    np.testing.assert_allclose(pred[:, 0], est.predict(X), rtol=1e-4, atol=1e-5)
    # A scale Keras's Normalization would clamp at its epsilon: Rescaling takes its place.
    X3 = np.concatenate([X[:, :, None], 1e-9 * rng.standard_normal((40, 5, 1))], axis=2)
    est = fastlstm.LSTMRegressor(hidden_size=4, epochs=2, random_state=0).fit(X3, y)
    assert est.x_scale_[1] < 1e-7
    model = interop.regressor_to_keras(est)
    assert type(model.get_layer("standardize")).__name__ == "Rescaling"
    np.testing.assert_allclose(model.predict(X3.astype(np.float32), verbose=0)[:, 0],
                               est.predict(X3), rtol=1e-4, atol=1e-4)


def test_regressor_to_keras_bad_inputs():
    _keras()
    sklearn = pytest.importorskip("sklearn")
    with pytest.raises(TypeError, match="LSTMRegressor, got LSTMLayer"):
        interop.regressor_to_keras(LSTMLayer(2, 3))
    with pytest.raises(sklearn.exceptions.NotFittedError):
        interop.regressor_to_keras(fastlstm.LSTMRegressor())


@pytest.mark.parametrize("kwargs", [dict(peepholes=True), dict(clip=1.0),
                                    dict(input_forget=True), dict(reverse=True)])
def test_onnx_only_features_are_refused_by_torch_and_keras_exports(kwargs):
    layer = fastlstm.LSTMLayer(2, 3, **kwargs)
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        interop.to_keras_weights(layer)
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match=name):
        interop.to_torch(layer)
