"""fastlstm.LSTMLayer (C kernels) against the batched NumPy reference and torch.nn.LSTM."""

import numpy as np
import pytest

import fastlstm
from fastlstm import _core
from fastlstm import _reference_layer as ref

CONFIGS = [  # T, B, I, H, layers, bidirectional, batch_first
    (1, 1, 1, 1, 1, False, False),
    (5, 3, 4, 3, 1, False, False),
    (4, 2, 5, 3, 2, True, False),
    (6, 1, 3, 10, 1, False, True),
    (3, 5, 7, 6, 3, True, True),
    (20, 8, 16, 32, 2, True, False),  # large enough for the BLAS path
    (7, 13, 9, 13, 1, True, False),  # G = 52: a partial panel in the packed kernel
]
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-5)}


def _close(name, actual, expected, dtype):
    np.testing.assert_allclose(actual, expected, err_msg=f"{name} ({np.dtype(dtype).name})",
                               **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("T, B, I, H, L, bi, bf", CONFIGS)
@pytest.mark.parametrize("with_state", [False, True])
def test_forward_backward_match_reference(T, B, I, H, L, bi, bf, dtype, with_state):
    _check_against_reference(T, B, I, H, L, bi, bf, dtype, with_state)


@pytest.mark.parametrize("split", ["auto", "batch", "units", "serial"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_path_and_split_matches_reference(split, dtype, isa):
    """Batch 70 and H = 13 on every ISA path this CPU has and every way of splitting the
    recurrence between threads: full and ragged register tiles (rows and units), partial
    panels, and the reference's numbers."""
    _check_against_reference(6, 70, 11, 13, 2, True, False, dtype, True, split=split)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(5, 70, 11, 13), (7, 3, 40, 130), (4, 1, 2, 70)])
def test_splits_and_thread_counts_give_identical_bits(shape, dtype, isa, threads):
    """Threads split outputs, never sums: every split and thread count gives the same bits,
    forward (training and inference) and backward."""
    T, B, I, H = shape
    layer = fastlstm.LSTMLayer(I, H, 2, bidirectional=True, dtype=dtype, seed=3)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    dy = rng.standard_normal((T, B, 2 * H)).astype(dtype)
    results = {}
    for n_threads in (1, 2, 3):
        threads(n_threads)
        for split in ("auto", "batch", "units", "serial"):
            layer._split = _core.SPLITS[split]
            y, (h, c) = layer.forward(x)
            dx, (dh0, dc0) = layer.backward(dy)
            yi = layer.forward(x, training=False)[0]
            results[(n_threads, split)] = [y, h, c, dx, dh0, dc0, yi, layer.grad_flat.copy()]
    first_key = (1, "serial")
    for key, arrays in results.items():
        for name, a, b in zip(("y", "h_n", "c_n", "dx", "dh0", "dc0", "y (inference)",
                               "grads"), arrays, results[first_key]):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: {key} vs {first_key} ({isa})")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
# H = 64 is a whole number of panels on every path: the units split runs the panel step there
@pytest.mark.parametrize("shape", [(5, 70, 11, 13), (4, 20, 1, 9), (3, 17, 40, 70), (4, 1, 3, 13),
                                   (4, 5, 6, 64)])
@pytest.mark.parametrize("extras", [
    dict(), dict(peepholes=True, clip=0.5, input_forget=True, activation="relu")],
    ids=["plain", "onnx-extras"])
def test_every_kind_of_step_gives_identical_bits(shape, dtype, extras, isa, threads):
    """Both ways of running the forward steps (a tile over unit blocks with the gate math on
    its registers; a product over gate-major panels, then a gate pass) give
    the same bits: forward (training and inference, with a state, lengths and restarts),
    backward, every split and thread count."""
    T, B, I, H = shape
    layer = fastlstm.LSTMLayer(I, H, 2, bidirectional=True, dtype=dtype, seed=3, **extras)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    state = tuple(rng.standard_normal((4, B, H)).astype(dtype) for _ in range(2))
    dy = rng.standard_normal((T, B, 2 * H)).astype(dtype)
    lengths = rng.integers(0, T + 1, B)
    reset = rng.random((T, B)) < 0.2
    results = {}
    for n_threads in (1, 2):
        threads(n_threads)
        for split in ("batch", "units"):
            for step in ("tile", "panels", "auto"):
                layer._split, layer._step = _core.SPLITS[split], _core.STEPS[step]
                out = []
                for kw in (dict(), dict(lengths=lengths, reset=reset)):
                    y, (h, c) = layer.forward(x, state, **kw)
                    dx, (dh0, dc0) = layer.backward(dy)
                    yi, (hi, ci) = layer.forward(x, state, training=False, **kw)
                    out += [y, h, c, dx, dh0, dc0, layer.grad_flat.copy(), yi, hi, ci]
                results[(n_threads, split, step)] = out
    layer._split = layer._step = 0
    first_key = (1, "batch", "tile")
    for key, arrays in results.items():
        for i, (a, b) in enumerate(zip(arrays, results[first_key])):
            np.testing.assert_array_equal(a, b, err_msg=f"output {i}: {key} vs {first_key} "
                                          f"({isa})")


@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("T, B, I, H, L, bi, bf", [CONFIGS[2], CONFIGS[5], CONFIGS[6]])
def test_activations_match_reference(T, B, I, H, L, bi, bf, dtype, activation):
    _check_against_reference(T, B, I, H, L, bi, bf, dtype, True, activation)


@pytest.mark.parametrize("extras", [
    dict(peepholes=True), dict(clip=0.4), dict(input_forget=True), dict(reverse=True),
    dict(peepholes=True, clip=0.5, input_forget=True, activation="relu")],
    ids=["peepholes", "clip", "input_forget", "reverse", "all-relu"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("T, B, I, H, L, bi, bf", [CONFIGS[2], CONFIGS[5], CONFIGS[6]])
def test_onnx_cell_extras_match_reference(T, B, I, H, L, bi, bf, dtype, extras):
    if extras.get("reverse") and bi:
        bi = False
    _check_against_reference(T, B, I, H, L, bi, bf, dtype, True, **extras)


def test_extras_in_chunked_inference_and_bad_values(monkeypatch):
    import fastlstm.layer as layer_module

    layer = fastlstm.LSTMLayer(3, 4, 2, reverse=True, peepholes=True, clip=0.7,
                               input_forget=True, dtype=np.float64, seed=1)
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    y_ref, (h_ref, c_ref) = layer.forward(x)
    monkeypatch.setattr(layer_module, "_INFERENCE_CHUNK_ELEMENTS", 2 * 2 * 16)
    y, (h, c) = layer.forward(x, training=False)
    np.testing.assert_allclose(y, y_ref, rtol=1e-13)
    np.testing.assert_allclose(h, h_ref, rtol=1e-13)
    assert [n for n, _ in layer.parameters()][4] == "peephole_l0"
    for kwargs, match in ((dict(clip=0), "clip"), (dict(clip=float("nan")), "clip"),
                          (dict(clip="x"), "clip"), (dict(reverse=True, bidirectional=True),
                                                     "reverse")):
        with pytest.raises((ValueError, TypeError), match=match):
            fastlstm.LSTMLayer(3, 4, **kwargs)


def _check_against_reference(T, B, I, H, L, bi, bf, dtype, with_state, activation="tanh",
                             peepholes=False, clip=None, input_forget=False, reverse=False,
                             split="auto"):
    layer = fastlstm.LSTMLayer(I, H, L, bidirectional=bi, batch_first=bf, dtype=dtype, seed=3,
                               activation=activation, peepholes=peepholes, clip=clip,
                               input_forget=input_forget, reverse=reverse)
    layer._split = _core.SPLITS[split]
    params = {k: v.astype(np.float64) for k, v in layer.state_dict().items()}
    rng = np.random.default_rng(1)
    D = 2 if bi else 1
    x = rng.standard_normal((B, T, I) if bf else (T, B, I))
    state = None
    if with_state:
        state = (rng.standard_normal((L * D, B, H)), rng.standard_normal((L * D, B, H)))
    y, (h_n, c_n) = layer.forward(x.astype(dtype), None if state is None else
                                  tuple(s.astype(dtype) for s in state))
    y_ref, (h_ref, c_ref), cache = ref.lstm_layer_forward(
        x, params, L, bi, None if state is None else state[0],
        None if state is None else state[1], batch_first=bf, activation=activation,
        clip=clip or 0.0, input_forget=input_forget, reverse=reverse)
    assert y.dtype == dtype
    _close("y", y, y_ref, dtype)
    _close("h_n", h_n, h_ref, dtype)
    _close("c_n", c_n, c_ref, dtype)
    dy = rng.standard_normal(y.shape)
    dh_n, dc_n = rng.standard_normal(h_n.shape), rng.standard_normal(c_n.shape)
    dx, (dh0, dc0) = layer.backward(dy.astype(dtype), (dh_n.astype(dtype), dc_n.astype(dtype)))
    dx_ref, (dh0_ref, dc0_ref), grads_ref = ref.lstm_layer_backward(dy, cache, dh_n, dc_n)
    _close("dx", dx, dx_ref, dtype)
    _close("dh0", dh0, dh0_ref, dtype)
    _close("dc0", dc0, dc0_ref, dtype)
    for name, g in grads_ref.items():
        _close(f"grad {name}", layer.grads[name], g, dtype)


@pytest.mark.parametrize("bi", [False, True])
def test_inference_path_equals_training_path(bi):
    layer = fastlstm.LSTMLayer(3, 5, 2, bidirectional=bi, dtype=np.float64, seed=0)
    x = np.random.default_rng(2).standard_normal((7, 4, 3))
    y1, (h1, c1) = layer.forward(x)
    y2, (h2, c2) = layer.forward(x, training=False)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(h1, h2)
    np.testing.assert_array_equal(c1, c2)
    with pytest.raises(RuntimeError, match="backward"):
        layer.backward(np.zeros_like(y2))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("L, bi, bf, with_lengths", [
    (1, False, False, False), (2, True, False, True), (2, False, True, False),
    (1, True, True, True)])
def test_gradients_given_as_none_are_zeros(L, bi, bf, with_lengths, dtype):
    """backward(None, (dh_n, None)) and the like: the same bits as the zeros they stand for;
    the internal need_dx=False keeps every other result and gives no dx."""
    layer = fastlstm.LSTMLayer(3, 5, L, bidirectional=bi, batch_first=bf, dtype=dtype, seed=0)
    T, B = 6, 4
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, 3) if bf else (T, B, 3)).astype(dtype)
    lengths = np.array([6, 2, 0, 5]) if with_lengths else None
    y, (h, c) = layer.forward(x, lengths=lengths)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dh, dc = (rng.standard_normal(h.shape).astype(dtype) for _ in range(2))

    def run(*args, **kw):
        layer.forward(x, lengths=lengths)
        dx, (dh0, dc0) = layer._backward_of(layer._cache, *args, **kw)
        return dx, dh0, dc0, {n: g.copy() for n, g in layer.grads.items()}

    zeros = np.zeros_like
    for given, full in [((None, (dh, None)), (zeros(y), (dh, zeros(dc)))),
                        ((None, (None, dc)), (zeros(y), (zeros(dh), dc))),
                        ((dy, (None, None)), (dy, None)),
                        ((None, None), (zeros(y), (zeros(dh), zeros(dc))))]:
        got, want = run(*given), run(*full)
        for a, b in zip(got[:3], want[:3]):
            np.testing.assert_array_equal(a, b)
        for name in want[3]:
            np.testing.assert_array_equal(got[3][name], want[3][name], err_msg=name)
    no_dx = run(dy, (dh, dc), need_dx=False)
    want = run(dy, (dh, dc))
    assert no_dx[0] is None and want[0].shape == x.shape
    for a, b in zip(no_dx[1:3], want[1:3]):
        np.testing.assert_array_equal(a, b)
    for name in want[3]:
        np.testing.assert_array_equal(no_dx[3][name], want[3][name], err_msg=name)
    layer.forward(x, lengths=lengths)
    np.testing.assert_array_equal(layer.backward()[0], run(zeros(y), None)[0])


def test_step_by_step_equals_whole_sequence():
    layer = fastlstm.LSTMLayer(3, 4, 2, dtype=np.float64, seed=5)
    x = np.random.default_rng(3).standard_normal((6, 2, 3))
    y, (h, c) = layer.forward(x, training=False)
    state = None
    for t in range(6):
        y_t, state = layer.forward(x[t:t + 1], state, training=False)
        np.testing.assert_allclose(y_t[0], y[t], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(state[0], h, rtol=1e-13)
    np.testing.assert_allclose(state[1], c, rtol=1e-13)


def test_matches_torch_lstm():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.LSTM(5, 7, num_layers=2, bidirectional=True, batch_first=True).double()
    layer = fastlstm.LSTMLayer(5, 7, 2, bidirectional=True, batch_first=True, dtype=np.float64)
    layer.load_state_dict({k: v.detach().numpy() for k, v in module.state_dict().items()})
    x = torch.randn(3, 9, 5, dtype=torch.float64, requires_grad=True)
    y_t, (h_t, c_t) = module(x)
    y, (h, c) = layer.forward(x.detach().numpy())
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h, h_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c, c_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    dy = torch.randn_like(y_t)
    y_t.backward(dy)
    dx, _ = layer.backward(dy.numpy())
    np.testing.assert_allclose(dx, x.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name, p in module.named_parameters():
        np.testing.assert_allclose(layer.grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


@pytest.mark.parametrize("call, match", [
    (lambda l: l.forward(np.zeros((3, 2))), "x: expected 3 dimensions"),
    (lambda l: l.forward(np.zeros((3, 2, 5))), "x: expected 4 features"),
    (lambda l: l.forward(np.zeros((0, 2, 4))), "at least one step"),
    (lambda l: l.forward(np.zeros((3, 2, 4)), (np.zeros((1, 3, 6)), np.zeros((1, 2, 6)))),
     r"h0: expected shape \(1, 2, 6\), got \(1, 3, 6\)"),
    (lambda l: l.forward(np.zeros((3, 2, 4), complex)), "complex"),
    (lambda l: l.load_state_dict({}), "missing keys"),
])
def test_bad_input(call, match):
    layer = fastlstm.LSTMLayer(4, 6)
    with pytest.raises((ValueError, TypeError), match=match):
        call(layer)


@pytest.mark.parametrize("activation", ["sigmoid", "Tanh", None, 1])
def test_bad_activation(activation):
    with pytest.raises(ValueError, match="activation: expected one of"):
        fastlstm.LSTMLayer(4, 6, activation=activation)


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear"])
def test_activation_matches_keras_lstm(activation):
    """LSTMLayer(activation=...) with Keras's weights (kernel (I, 4H) and recurrent kernel
    (H, 4H) transposed, the one bias as bias_ih) equals keras.layers.LSTM on the whole output
    sequence and the final states (Keras 3 on the torch backend; skipped without keras)."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    T, B, I, H = 7, 3, 4, 5
    keras.utils.set_random_seed(1)
    klayer = keras.layers.LSTM(H, activation=activation, return_sequences=True,
                               return_state=True, bias_initializer="random_normal")
    x = np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32)
    y_k, h_k, c_k = (keras.ops.convert_to_numpy(a) for a in klayer(x))
    kernel, recurrent, bias = klayer.get_weights()
    layer = fastlstm.LSTMLayer(I, H, batch_first=True, activation=activation)
    layer.load_state_dict({"weight_ih_l0": kernel.T, "weight_hh_l0": recurrent.T,
                           "bias_ih_l0": bias, "bias_hh_l0": np.zeros_like(bias)})
    y, (h_n, c_n) = layer.forward(x)
    np.testing.assert_allclose(y, y_k, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n[0], h_k, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(c_n[0], c_k, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("chunk_steps", [1, 2, 3])
def test_inference_in_chunks_equals_one_pass(monkeypatch, chunk_steps):
    """Inference splits long sequences into chunks of steps (bounded scratch), carrying the
    state across chunk edges in both directions: the result equals the training path's."""
    import fastlstm.layer as layer_module

    T, B, I, H = 7, 3, 4, 5
    layer = fastlstm.LSTMLayer(I, H, 2, bidirectional=True, dtype=np.float64, seed=2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I))
    state = (rng.standard_normal((4, B, H)), rng.standard_normal((4, B, H)))
    y_ref, (h_ref, c_ref) = layer.forward(x, state)
    monkeypatch.setattr(layer_module, "_INFERENCE_CHUNK_ELEMENTS", chunk_steps * B * 4 * H)
    y, (h_n, c_n) = layer.forward(x, state, training=False)
    np.testing.assert_allclose(y, y_ref, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(h_n, h_ref, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(c_n, c_ref, rtol=1e-13, atol=1e-14)
