"""The batched NumPy reference of the layer (fastlstm._reference_layer), checked on its own.

It is the oracle of the C kernels, so its expected numbers come from independent paths only:
central finite differences in float64 for every gradient, step-by-step runs against the
whole-sequence run, and, where torch is installed, ``torch.nn.LSTM`` with the same weights.
"""

import numpy as np
import pytest

from conftest import numerical_gradient
from fastlstm._reference_layer import (
    init_params,
    lstm_layer_backward,
    lstm_layer_forward,
    param_names,
)

# (T, B, I, H, num_layers, bidirectional, batch_first): T 1 and 4, B 1 and 3, H 1 and 3, odd I.
CONFIGS = [
    (1, 1, 3, 1, 1, False, False),
    (4, 3, 3, 3, 1, False, True),
    (4, 1, 5, 3, 1, True, False),
    (1, 3, 3, 3, 2, True, True),
    (4, 3, 1, 1, 2, False, False),
    (4, 3, 3, 3, 2, True, True),
    (4, 1, 3, 1, 2, True, False),
]
CONFIG_IDS = [f"T{t}-B{b}-I{i}-H{h}-L{l}-{'bi' if d else 'uni'}-{'bf' if bf else 'tm'}"
              for t, b, i, h, l, d, bf in CONFIGS]


def make_problem(config, seed, dtype=np.float64):
    """Random x, h0, c0, params and loss weights R, Rh, Rc for one configuration."""
    seq_len, batch, input_size, hidden_size, num_layers, bidirectional, batch_first = config
    rng = np.random.default_rng(seed)
    num_directions = 2 if bidirectional else 1
    params = init_params(input_size, hidden_size, num_layers, bidirectional, dtype, rng)
    x_shape = (batch, seq_len, input_size) if batch_first else (seq_len, batch, input_size)
    y_shape = x_shape[:2] + (num_directions * hidden_size,)
    state_shape = (num_layers * num_directions, batch, hidden_size)
    x = rng.standard_normal(x_shape).astype(dtype)
    h0 = rng.standard_normal(state_shape).astype(dtype) * 0.5
    c0 = rng.standard_normal(state_shape).astype(dtype) * 0.5
    weights = {"y": rng.standard_normal(y_shape), "h_n": rng.standard_normal(state_shape),
               "c_n": rng.standard_normal(state_shape)}
    weights = {k: v.astype(dtype) for k, v in weights.items()}
    return x, h0, c0, params, weights


def run_forward(config, x, h0, c0, params, activation="tanh", **extras):
    _, _, _, _, num_layers, bidirectional, batch_first = config
    return lstm_layer_forward(x, params, num_layers, bidirectional, h0=h0, c0=c0,
                              batch_first=batch_first, activation=activation, **extras)


def loss(config, x, h0, c0, params, weights, activation="tanh", **extras):
    """sum(y * R) + sum(h_n * Rh) + sum(c_n * Rc)."""
    y, (h_n, c_n), _ = run_forward(config, x, h0, c0, params, activation, **extras)
    return np.sum(y * weights["y"]) + np.sum(h_n * weights["h_n"]) + np.sum(c_n * weights["c_n"])


def relative_error(expected, actual):
    """Norm-wise relative error, safe when both are zero."""
    scale = max(np.linalg.norm(expected), np.linalg.norm(actual), 1e-300)
    return np.linalg.norm(expected - actual) / scale


# --- names and initialisation -----------------------------------------------------------------

def test_param_names_order():
    assert param_names(1, False) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert param_names(2, True) == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
        "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
        "bias_hh_l0_reverse",
        "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
        "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse",
        "bias_hh_l1_reverse",
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_params_shapes_bounds_and_draw_order(dtype):
    input_size, hidden_size = 5, 4
    params = init_params(input_size, hidden_size, 2, True, dtype, np.random.default_rng(7))
    assert list(params) == param_names(2, True)
    bound = 1 / np.sqrt(hidden_size)
    for name, value in params.items():
        layer_input = input_size if "_l0" in name else 2 * hidden_size
        expected = {"weight_ih": (4 * hidden_size, layer_input),
                    "weight_hh": (4 * hidden_size, hidden_size)}.get(name[:9],
                                                                      (4 * hidden_size,))
        assert value.shape == expected, name
        assert value.dtype == np.dtype(dtype), name
        assert np.all(np.abs(value) <= bound), name
    # One generator, drawn tensor by tensor in the order of param_names.
    rng = np.random.default_rng(7)
    for name in param_names(2, True):
        draw = rng.uniform(-bound, bound, size=params[name].shape).astype(dtype)
        np.testing.assert_array_equal(params[name], draw, err_msg=name)


# --- finite-difference gradient check (float64) -----------------------------------------------

# The largest configuration (two bidirectional layers, batch first: 2 s a check on a slow
# machine) runs with the slow tests (.ci/run runs them after the default suite).
FD_CASES = [pytest.param(c, id=i, marks=[pytest.mark.slow] if k == 5 else [])
            for k, (c, i) in enumerate(zip(CONFIGS, CONFIG_IDS))]


@pytest.mark.parametrize("config", FD_CASES)
def test_gradients_match_finite_differences(config):
    _check_gradients(config, "tanh")


@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize("config", [FD_CASES[2], FD_CASES[5]])
def test_activation_gradients_match_finite_differences(config, activation):
    _check_gradients(config, activation)


def test_activations_are_what_they_say():
    """relu: y equals the tanh formula with relu in its place, from a separate one-step
    computation; linear keeps c itself."""
    rng = np.random.default_rng(5)
    params = init_params(3, 4, 1, False, np.float64, rng)
    x = rng.standard_normal((1, 2, 3))
    pre = x[0] @ params["weight_ih_l0"].T + params["bias_ih_l0"] + params["bias_hh_l0"]
    i, f, g, o = np.split(pre, 4, axis=-1)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    for name, act in (("relu", lambda z: np.maximum(z, 0)), ("linear", lambda z: z)):
        c = sig(i) * act(g)
        y, (_, c_n), _ = lstm_layer_forward(x, params, 1, False, activation=name)
        np.testing.assert_allclose(c_n[0], c, rtol=1e-14, err_msg=name)
        np.testing.assert_allclose(y[0], sig(o) * act(c), rtol=1e-14, err_msg=name)
    with pytest.raises(ValueError, match="activation"):
        lstm_layer_forward(x, params, 1, False, activation="sigmoid")


@pytest.mark.parametrize("extras", [
    dict(peepholes=True), dict(clip=0.3), dict(input_forget=True), dict(reverse=True),
    dict(peepholes=True, clip=0.4, input_forget=True)],
    ids=["peepholes", "clip", "input_forget", "reverse", "all"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_onnx_cell_extras_gradients_match_finite_differences(extras, activation):
    """ONNX's cell extras: peepholes (i, f on c_{t-1}, o on c_t), clipping of every
    activation's argument, f = 1 - i, a reverse-only direction."""
    config = CONFIGS[2] if "reverse" not in extras else (4, 3, 3, 3, 2, False, False)
    _check_gradients(config, activation, **extras)


def _check_gradients(config, activation, peepholes=False, **extras):
    x, h0, c0, params, weights = make_problem(config, seed=1)
    if peepholes:
        rng = np.random.default_rng(9)
        for name in list(params):
            if name.startswith("bias_hh"):
                params[name.replace("bias_hh", "peephole")] = rng.uniform(
                    -0.5, 0.5, params[name].shape[0] * 3 // 4)
        params = {n: params[n] for n in param_names(config[4], config[5], peepholes=True)}
    _, (h_n, _), cache = run_forward(config, x, h0, c0, params, activation, **extras)
    dx, (dh0, dc0), grads = lstm_layer_backward(weights["y"], cache, dh_n=weights["h_n"],
                                                dc_n=weights["c_n"])
    assert list(grads) == list(params)

    def f():
        return loss(config, x, h0, c0, params, weights, activation, **extras)

    analytic = {"x": dx, "h0": dh0, "c0": dc0, **grads}
    inputs = {"x": x, "h0": h0, "c0": c0, **params}
    for name, value in inputs.items():
        assert analytic[name].shape == value.shape, name
        numeric = numerical_gradient(f, value)
        err = relative_error(numeric, analytic[name])
        assert err < 1e-6, f"d{name}: relative error {err:.2e} >= 1e-6"
        assert np.linalg.norm(numeric) > 0, f"d{name} is zero: the check would be vacuous"


def test_missing_states_and_state_gradients_mean_zeros():
    config = (3, 2, 3, 2, 2, True, False)
    x, h0, c0, params, weights = make_problem(config, seed=2)
    zeros = np.zeros_like(h0)
    y, (h_n, c_n), cache = run_forward(config, x, None, None, params)
    y_z, (h_n_z, c_n_z), cache_z = run_forward(config, x, zeros, zeros, params)
    np.testing.assert_array_equal(y, y_z)
    np.testing.assert_array_equal(h_n, h_n_z)
    np.testing.assert_array_equal(c_n, c_n_z)
    dx, (dh0, dc0), grads = lstm_layer_backward(weights["y"], cache)
    dx_z, (dh0_z, dc0_z), grads_z = lstm_layer_backward(weights["y"], cache_z, zeros, zeros)
    np.testing.assert_array_equal(dx, dx_z)
    np.testing.assert_array_equal(dh0, dh0_z)
    np.testing.assert_array_equal(dc0, dc0_z)
    for name in grads:
        np.testing.assert_array_equal(grads[name], grads_z[name], err_msg=name)


# --- step by step equals the whole sequence ---------------------------------------------------

def test_step_by_step_equals_whole_sequence():
    """T calls of one step each, carrying (h, c), give the whole-sequence forward; chaining the
    T backward calls in reverse, carrying (dh, dc) and summing the weight gradients, gives the
    whole-sequence backward."""
    config = (6, 3, 3, 4, 3, False, False)
    x, h0, c0, params, weights = make_problem(config, seed=3)
    y, (h_n, c_n), cache = run_forward(config, x, h0, c0, params)
    dx, (dh0, dc0), grads = lstm_layer_backward(weights["y"], cache, weights["h_n"],
                                                weights["c_n"])

    seq_len = x.shape[0]
    h, c = h0, c0
    ys, caches = [], []
    for t in range(seq_len):
        y_t, (h, c), cache_t = run_forward(config, x[t:t + 1], h, c, params)
        ys.append(y_t)
        caches.append(cache_t)
    tol = dict(rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(np.concatenate(ys), y, err_msg="y", **tol)
    np.testing.assert_allclose(h, h_n, err_msg="h_n", **tol)
    np.testing.assert_allclose(c, c_n, err_msg="c_n", **tol)

    dh, dc = weights["h_n"], weights["c_n"]
    dxs = [None] * seq_len
    grads_sum = {name: np.zeros_like(value) for name, value in params.items()}
    for t in reversed(range(seq_len)):
        dxs[t], (dh, dc), grads_t = lstm_layer_backward(weights["y"][t:t + 1], caches[t], dh, dc)
        for name in grads_sum:
            grads_sum[name] += grads_t[name]
    np.testing.assert_allclose(np.concatenate(dxs), dx, err_msg="dx", **tol)
    np.testing.assert_allclose(dh, dh0, err_msg="dh0", **tol)
    np.testing.assert_allclose(dc, dc0, err_msg="dc0", **tol)
    for name in grads:
        np.testing.assert_allclose(grads_sum[name], grads[name], err_msg=name, **tol)


# --- dtypes, layout and extreme inputs --------------------------------------------------------

def test_batch_first_is_only_a_layout():
    config_tm = (5, 2, 3, 3, 2, True, False)
    config_bf = config_tm[:-1] + (True,)
    x, h0, c0, params, weights = make_problem(config_tm, seed=4)
    y, (h_n, c_n), cache = run_forward(config_tm, x, h0, c0, params)
    y_bf, (h_n_bf, c_n_bf), cache_bf = run_forward(config_bf, x.transpose(1, 0, 2), h0, c0,
                                                   params)
    np.testing.assert_array_equal(y_bf, y.transpose(1, 0, 2))
    np.testing.assert_array_equal(h_n_bf, h_n)
    np.testing.assert_array_equal(c_n_bf, c_n)
    dx, _, grads = lstm_layer_backward(weights["y"], cache)
    dx_bf, _, grads_bf = lstm_layer_backward(weights["y"].transpose(1, 0, 2), cache_bf)
    np.testing.assert_array_equal(dx_bf, dx.transpose(1, 0, 2))
    for name in grads:
        np.testing.assert_array_equal(grads_bf[name], grads[name], err_msg=name)


def test_float32_runs_in_float32_and_agrees_with_float64():
    config = (5, 3, 3, 4, 2, True, False)
    x, h0, c0, params, weights = make_problem(config, seed=5)

    def as32(array):
        return array.astype(np.float32)

    params32 = {name: as32(value) for name, value in params.items()}
    y, (h_n, c_n), cache = run_forward(config, x, h0, c0, params)
    y32, (h_n32, c_n32), cache32 = run_forward(config, as32(x), as32(h0), as32(c0), params32)
    dx, (dh0, dc0), grads = lstm_layer_backward(weights["y"], cache, weights["h_n"],
                                                weights["c_n"])
    dx32, (dh0_32, dc0_32), grads32 = lstm_layer_backward(
        as32(weights["y"]), cache32, as32(weights["h_n"]), as32(weights["c_n"]))
    pairs = {"y": (y, y32), "h_n": (h_n, h_n32), "c_n": (c_n, c_n32), "dx": (dx, dx32),
             "dh0": (dh0, dh0_32), "dc0": (dc0, dc0_32)}
    pairs.update({name: (grads[name], grads32[name]) for name in grads})
    for name, (ref, got) in pairs.items():
        assert got.dtype == np.float32, name
        assert relative_error(ref, got) < 1e-5, name


def test_saturated_gates_do_not_overflow():
    """The sigmoid is exact and overflow-safe: huge pre-activations give 0/1 gates silently."""
    config = (3, 2, 3, 2, 1, True, False)
    x, h0, c0, params, weights = make_problem(config, seed=6)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y, (h_n, c_n), cache = run_forward(config, x * 1e4, h0, c0, params)
        dx, _, grads = lstm_layer_backward(weights["y"], cache)
    assert np.all(np.isfinite(y)) and np.all(np.abs(y) <= 1)
    assert np.all(np.isfinite(dx))
    gates = cache["steps"][0]["gates"]
    assert np.all((gates >= -1) & (gates <= 1))


def test_bad_inputs_are_refused():
    config = (2, 2, 3, 2, 1, False, False)
    x, h0, c0, params, weights = make_problem(config, seed=8)
    with pytest.raises(ValueError, match="x must have 3 dimensions"):
        lstm_layer_forward(x[0], params, 1, False)
    with pytest.raises(TypeError, match="weight_ih_l0"):
        lstm_layer_forward(x.astype(np.float32), params, 1, False)
    with pytest.raises(ValueError, match="h0"):
        lstm_layer_forward(x, params, 1, False, h0=h0[:, :1])
    with pytest.raises(ValueError, match="weight_ih_l0"):
        lstm_layer_forward(x[:, :, :2], params, 1, False)
    with pytest.raises(ValueError, match="weight_ih_l0_reverse"):
        lstm_layer_forward(x, params, 1, True)
    _, _, cache = lstm_layer_forward(x, params, 1, False)
    with pytest.raises(ValueError, match="dy"):
        lstm_layer_backward(weights["y"][:1], cache)


# --- torch.nn.LSTM with the same weights (float64) ---------------------------------------------

TORCH_CONFIGS = CONFIGS + [(7, 4, 5, 6, 3, True, False), (9, 2, 4, 5, 2, False, True)]
TORCH_IDS = CONFIG_IDS + ["T7-B4-I5-H6-L3-bi-tm", "T9-B2-I4-H5-L2-uni-bf"]


@pytest.mark.parametrize("config", TORCH_CONFIGS, ids=TORCH_IDS)
def test_matches_torch(config):
    torch = pytest.importorskip("torch")
    seq_len, batch, input_size, hidden_size, num_layers, bidirectional, batch_first = config
    x, h0, c0, params, weights = make_problem(config, seed=9)

    module = torch.nn.LSTM(input_size, hidden_size, num_layers=num_layers,
                           bidirectional=bidirectional, batch_first=batch_first).double()
    assert list(module._flat_weights_names) == param_names(num_layers, bidirectional)
    with torch.no_grad():
        for name in module._flat_weights_names:
            getattr(module, name).copy_(torch.from_numpy(params[name]))
    x_t = torch.tensor(x, requires_grad=True)
    h0_t = torch.tensor(h0, requires_grad=True)
    c0_t = torch.tensor(c0, requires_grad=True)
    y_t, (h_n_t, c_n_t) = module(x_t, (h0_t, c0_t))
    loss_t = ((y_t * torch.from_numpy(weights["y"])).sum()
              + (h_n_t * torch.from_numpy(weights["h_n"])).sum()
              + (c_n_t * torch.from_numpy(weights["c_n"])).sum())
    loss_t.backward()

    y, (h_n, c_n), cache = run_forward(config, x, h0, c0, params)
    dx, (dh0, dc0), grads = lstm_layer_backward(weights["y"], cache, weights["h_n"],
                                                weights["c_n"])
    expected = {"y": y_t, "h_n": h_n_t, "c_n": c_n_t, "dx": x_t.grad, "dh0": h0_t.grad,
                "dc0": c0_t.grad}
    expected.update({name: getattr(module, name).grad for name in module._flat_weights_names})
    actual = {"y": y, "h_n": h_n, "c_n": c_n, "dx": dx, "dh0": dh0, "dc0": dc0, **grads}
    for name, ref in expected.items():
        ref = ref.detach().numpy()
        assert actual[name].shape == ref.shape, name
        np.testing.assert_allclose(actual[name], ref, rtol=1e-10, atol=1e-13,
                                   err_msg=f"{name} vs torch (rtol 1e-10)")
