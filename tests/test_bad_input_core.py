"""Bad input to the core entry points (LSTM, forward, backward, train, lstm_step, weight
assignment) is refused before any C call with a ValueError/TypeError naming the argument (and,
for arrays, the expected and received shapes); odd but valid layouts (non-contiguous views,
Fortran order, negative strides, int lists) are accepted and give exactly the result of the
contiguous float64 array.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import fastlstm
from fastlstm import reference

from conftest import PARAM_NAMES, assert_close, assert_params_close, snapshot

I, H, O, T = 3, 4, 2, 5
K = H + I


def model(seed=0, **kw):
    np.random.seed(seed)
    return fastlstm.LSTM(I, H, O, verbose=False, **kw)


def shape_pattern(*shapes):
    """A regex matching the shapes in order, e.g. '(5, 3).*(5, 2)'."""
    return ".*".join(re.escape(str(tuple(s))) for s in shapes)


# ------------------------------------------------------------------------------------------------
# Constructor
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((1.5, 2, 1), {}, TypeError, r"input_size.*1\.5"),
    ((1, "2", 1), {}, TypeError, r"hidden_size.*'2'"),
    ((1, 2, None), {}, TypeError, r"output_size.*None"),
    ((True, 2, 1), {}, TypeError, r"input_size.*bool"),
    ((np.float64(3.0), 2, 1), {}, TypeError, r"input_size"),
    ((0, 2, 1), {}, ValueError, r"input_size.*>= 1.*got 0"),
    ((1, 0, 1), {}, ValueError, r"hidden_size.*got 0"),
    ((1, 2, -3), {}, ValueError, r"output_size.*got -3"),
    ((1, 2, 1), {"dtype": np.int32}, TypeError, r"dtype.*float32 or float64.*int32"),
    ((1, 2, 1), {"dtype": np.float16}, TypeError, r"dtype.*float16"),
    ((1, 2, 1), {"dtype": np.complex128}, TypeError, r"dtype.*complex128"),
    ((1, 2, 1), {"dtype": "banana"}, TypeError, r"dtype.*banana"),
    ((1, 2, 1), {"learning_rate": "0.1"}, TypeError, r"learning_rate"),
    ((1, 2, 1), {"learning_rate": np.nan}, ValueError, r"learning_rate.*finite"),
    ((1, 2, 1), {"clip": -1.0}, ValueError, r"clip.*-1\.0"),
    ((1, 2, 1), {"clip": "5"}, TypeError, r"clip"),
])
def test_constructor_refuses(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fastlstm.LSTM(*args, **kwargs)


def test_constructor_accepts_numpy_ints_and_dtype_names():
    m = fastlstm.LSTM(np.int64(3), np.int32(4), np.uint8(2), dtype="float32")
    assert (m.input_size, m.hidden_size, m.output_size) == (3, 4, 2)
    assert all(type(v) is int for v in (m.input_size, m.hidden_size, m.output_size))
    assert m.Wf.dtype == np.float32 and m.Wf.shape == (4, 7)


# ------------------------------------------------------------------------------------------------
# forward
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("inputs,exc,match", [
    (np.zeros((T, 2)), ValueError, r"inputs.*" + shape_pattern((T, I), (T, 2))),
    (np.zeros((T, 4)), ValueError, r"inputs.*" + shape_pattern((T, I), (T, 4))),
    ([np.zeros(2)] * T, ValueError, r"inputs.*" + shape_pattern((T, I), (T, 2))),
    (np.zeros(T), ValueError, r"inputs.*" + shape_pattern((T, I)) + r".*\(5,\)"),
    (np.zeros((T, I, 2)), ValueError, r"inputs.*" + shape_pattern((T, I), (T, I, 2))),
    ([], ValueError, r"inputs.*empty"),
    (np.zeros((0, I)), ValueError, r"inputs.*empty"),
    ("abc", TypeError, r"inputs.*str"),
    (b"abc", TypeError, r"inputs.*bytes"),
    ([["a", "b", "c"]], TypeError, r"inputs.*numeric"),
    (np.zeros((T, I), dtype=complex), TypeError, r"inputs.*complex.*" + shape_pattern((T, I))),
    (np.array([[1.0, 2.0, None]] * 2, dtype=object), TypeError, r"inputs.*object"),
    ([[1.0, 2.0, 3.0], [1.0, 2.0]], ValueError, r"inputs"),
    (None, TypeError, r"inputs.*NoneType"),
    (3.0, TypeError, r"inputs.*float"),
    (iter([[1.0, 2.0, 3.0]]), TypeError, r"inputs"),
])
def test_forward_refuses(inputs, exc, match):
    m = model()
    with pytest.raises(exc, match=match):
        m.forward(inputs)


def test_forward_refuses_extended_precision():
    if np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("long double is double on this platform")
    with pytest.raises(TypeError, match=r"inputs.*float(96|128).*convert"):
        model().forward(np.zeros((T, I), dtype=np.longdouble))


def test_failed_forward_keeps_the_previous_forward():
    """A refused forward must not clobber the cache: backward still differentiates the last
    successful forward, exactly as the reference does."""
    fast = model(seed=3)
    np.random.seed(3)
    ref = reference.LSTM(I, H, O)
    x = np.random.default_rng(3).normal(size=(T, I))
    y = np.random.default_rng(4).normal(size=(T, O))
    fast.forward(x)
    ref.forward(list(x))
    with pytest.raises(ValueError):
        fast.forward(np.zeros((T, I + 1)))
    assert_close("backward loss", fast.backward(y), ref.backward(list(y)))
    assert_params_close(fast, ref)


# ------------------------------------------------------------------------------------------------
# backward
# ------------------------------------------------------------------------------------------------

def test_backward_before_forward_is_a_runtime_error():
    with pytest.raises(RuntimeError, match=r"backward.*forward"):
        model().backward(np.zeros((T, O)))


@pytest.mark.parametrize("targets,exc,match", [
    (np.zeros((T - 1, O)), ValueError, r"targets.*5 time steps.*" + shape_pattern((T - 1, O))),
    (np.zeros((T + 1, O)), ValueError, r"targets.*5 time steps.*" + shape_pattern((T + 1, O))),
    (np.zeros((T, O + 1)), ValueError, r"targets.*" + shape_pattern((T, O), (T, O + 1))),
    (np.zeros((T, 1)), ValueError, r"targets.*" + shape_pattern((T, O), (T, 1))),
    (np.zeros(T), ValueError, r"targets.*" + shape_pattern((T, O))),
    ([], ValueError, r"targets.*empty"),
    ("target", TypeError, r"targets"),
    (np.zeros((T, O), dtype=complex), TypeError, r"targets.*complex"),
    (np.array([[0.0, "x"]] * T, dtype=object), TypeError, r"targets.*object"),
])
def test_backward_refuses_and_leaves_weights(targets, exc, match):
    m = model()
    m.forward(np.ones((T, I)))
    before = snapshot(m)
    with pytest.raises(exc, match=match):
        m.backward(targets)
    for name in PARAM_NAMES:
        assert np.array_equal(getattr(m, name), before[name]), name


# ------------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------------

GOOD_X = [np.ones((4, I)), np.ones((5, I))]
GOOD_Y = [np.zeros((4, O)), np.zeros((5, O))]


@pytest.mark.parametrize("X,y,epochs,exc,match", [
    (GOOD_X, GOOD_Y[:1], 1, ValueError, r"y_train.*expected 2.*got 1"),
    (GOOD_X[:1], GOOD_Y, 1, ValueError, r"y_train.*expected 1.*got 2"),
    ([], [], 1, ValueError, r"X_train.*empty"),
    (GOOD_X, [GOOD_Y[0], np.zeros((4, O))], 1, ValueError,
     r"y_train\[1\].*5 time steps.*X_train\[1\].*got 4"),
    ([GOOD_X[0], np.ones((5, I + 1))], GOOD_Y, 1, ValueError,
     r"X_train\[1\].*" + shape_pattern((5, I), (5, I + 1))),
    (GOOD_X, [GOOD_Y[0], np.zeros((5, O + 1))], 1, ValueError,
     r"y_train\[1\].*" + shape_pattern((5, O), (5, O + 1))),
    ([GOOD_X[0], np.zeros((0, I))], [GOOD_Y[0], np.zeros((0, O))], 1, ValueError,
     r"X_train\[1\].*empty"),
    ([GOOD_X[0], "abc"], GOOD_Y, 1, TypeError, r"X_train\[1\]"),
    (None, GOOD_Y, 1, TypeError, r"X_train.*NoneType"),
    (GOOD_X, 7, 1, TypeError, r"y_train.*int"),
    (GOOD_X, GOOD_Y, 1.5, TypeError, r"epochs.*1\.5"),
    (GOOD_X, GOOD_Y, -1, ValueError, r"epochs.*>= 0.*-1"),
])
def test_train_refuses_before_any_update(X, y, epochs, exc, match):
    m = model()
    before = snapshot(m)
    with pytest.raises(exc, match=match):
        m.train(X, y, epochs=epochs)
    for name in PARAM_NAMES:
        assert np.array_equal(getattr(m, name), before[name]), (
            f"{name} changed although train refused its input")


# ------------------------------------------------------------------------------------------------
# lstm_step
# ------------------------------------------------------------------------------------------------

STEP_NAMES = ("x_t", "h_prev", "c_prev", "Wf", "Wi", "Wo", "Wc", "bf", "bi", "bo", "bc")


def step_args(B=None, seed=0):
    rng = np.random.default_rng(seed)
    lead = () if B is None else (B,)
    return {"x_t": rng.normal(size=lead + (I,)), "h_prev": rng.normal(size=lead + (H,)),
            "c_prev": rng.normal(size=lead + (H,)),
            **{w: rng.normal(size=(H, K)) for w in ("Wf", "Wi", "Wo", "Wc")},
            **{b: rng.normal(size=H) for b in ("bf", "bi", "bo", "bc")}}


@pytest.mark.parametrize("name", ["Wf", "Wi", "Wo", "Wc"])
@pytest.mark.parametrize("bad", [(H, K - 1), (H, K + 1), (H + 1, K), (K, H), (H * K,),
                                 (1, H, K)])
def test_lstm_step_refuses_weight_shapes(name, bad):
    args = step_args()
    args[name] = np.zeros(bad)
    with pytest.raises(ValueError, match=re.escape(name) + r".*" + shape_pattern((H, K), bad)):
        fastlstm.lstm_step(**args)


@pytest.mark.parametrize("name", ["bf", "bi", "bo", "bc"])
@pytest.mark.parametrize("bad", [(H + 1,), (H - 1,), (1, H), (H, 2), (1,)])
def test_lstm_step_refuses_bias_shapes(name, bad):
    args = step_args()
    args[name] = np.zeros(bad)
    with pytest.raises(ValueError, match=re.escape(name) + r".*\(4,\).*\(4, 1\).*"
                       + re.escape(str(bad))):
        fastlstm.lstm_step(**args)


@pytest.mark.parametrize("x_shape,h_shape,match", [
    ((2, I), (3, H), r"x_t.*\(3, I\).*" + shape_pattern((3, H), (2, I))),
    ((I,), (3, H), r"x_t.*\(3, I\).*" + shape_pattern((3, H)) + r".*\(3,\)"),
    ((1, I), (H,), r"x_t.*\(I,\).*\(4,\).*" + shape_pattern((1, I))),
])
def test_lstm_step_refuses_mismatched_batch(x_shape, h_shape, match):
    args = step_args()
    args["x_t"] = np.zeros(x_shape)
    args["h_prev"] = np.zeros(h_shape)
    args["c_prev"] = np.zeros(h_shape)
    with pytest.raises(ValueError, match=match):
        fastlstm.lstm_step(**args)


@pytest.mark.parametrize("name,value,exc,match", [
    ("c_prev", np.zeros(H + 1), ValueError, r"c_prev.*\(4,\).*\(5,\)"),
    ("c_prev", np.zeros((2, H)), ValueError, r"c_prev.*\(4,\).*\(2, 4\)"),
    ("h_prev", np.zeros((2, 2, H)), ValueError, r"h_prev.*\(2, 2, 4\)"),
    ("h_prev", np.zeros(0), ValueError, r"h_prev.*\(0,\)"),
    ("x_t", "abc", TypeError, r"x_t"),
    ("h_prev", np.zeros(H, dtype=complex), TypeError, r"h_prev.*complex"),
    ("Wc", np.zeros((H, K), dtype=object), TypeError, r"Wc.*object"),
    ("bo", [[0.0, 1.0], [2.0]], ValueError, r"bo"),
])
def test_lstm_step_refuses_other_bad_arguments(name, value, exc, match):
    args = step_args()
    args[name] = value
    with pytest.raises(exc, match=match):
        fastlstm.lstm_step(**args)


def test_lstm_step_refuses_zero_features_naming_x_t():
    args = step_args()
    args["x_t"] = np.zeros(0)
    for w in ("Wf", "Wi", "Wo", "Wc"):
        args[w] = np.zeros((H, H))
    with pytest.raises(ValueError, match=r"x_t.*\(0,\)"):
        fastlstm.lstm_step(**args)


# ------------------------------------------------------------------------------------------------
# Assigning parameters
# ------------------------------------------------------------------------------------------------

PARAM_SHAPES = {"Wf": (H, K), "Wi": (H, K), "Wc": (H, K), "Wo": (H, K), "Wy": (O, H),
                "bf": (H, 1), "bi": (H, 1), "bc": (H, 1), "bo": (H, 1), "by": (O, 1)}


@pytest.mark.parametrize("name", PARAM_NAMES)
def test_assigning_a_wrongly_shaped_parameter_is_refused(name):
    m = model()
    before = snapshot(m)
    good = PARAM_SHAPES[name]
    for bad in [(2, 2), (good[0] + 1, good[1]), (good[0] * good[1],), (1,) + good]:
        with pytest.raises(ValueError, match=re.escape(name) + r".*" + shape_pattern(good, bad)):
            setattr(m, name, np.zeros(bad))
    with pytest.raises(TypeError, match=re.escape(name) + r".*complex"):
        setattr(m, name, np.zeros(good, dtype=complex))
    for other in PARAM_NAMES:
        assert np.array_equal(getattr(m, other), before[other]), (
            f"{other} changed after a refused assignment to {name}")


def test_wf_assignment_message_names_both_shapes():
    m = model()
    with pytest.raises(ValueError, match=r"Wf: expected shape \(4, 7\), got \(2, 2\)"):
        m.Wf = np.zeros((2, 2))


@pytest.mark.parametrize("name", PARAM_NAMES)
def test_assigning_parameters_reaches_forward(name):
    """A correctly shaped assignment (int list, Fortran, non-contiguous) is copied in and used."""
    rng = np.random.default_rng(9)
    shape = PARAM_SHAPES[name]
    value = rng.integers(-2, 3, size=shape)
    for form in (value.tolist(), np.asfortranarray(value.astype(float)),
                 np.repeat(value.astype(float), 2, axis=1)[:, ::2]):
        fast = model(seed=12)
        np.random.seed(12)
        ref = reference.LSTM(I, H, O)
        setattr(fast, name, form)
        setattr(ref, name, value.astype(float))
        assert getattr(fast, name).dtype == np.float64
        assert np.array_equal(getattr(fast, name), value)
        x = rng.normal(size=(T, I))
        h_fast, y_fast = fast.forward(x)
        h_ref, y_ref = ref.forward(list(x))
        assert_close(f"outputs[-1] after setting {name}", y_fast[-1], y_ref[-1])


# ------------------------------------------------------------------------------------------------
# Odd but valid layouts give exactly the contiguous result
# ------------------------------------------------------------------------------------------------

def layouts(arr):
    """The same values as a contiguous float array, in other layouts."""
    arr = np.asarray(arr, dtype=np.float64)
    wide = np.zeros(arr.shape[:-1] + (2 * arr.shape[-1],))
    wide[..., ::2] = arr
    reversed_rows = np.ascontiguousarray(arr[::-1])[::-1]
    out = {"strided view": wide[..., ::2], "negative stride": reversed_rows,
           "fortran": np.asfortranarray(arr), "list": arr.tolist()}
    if np.array_equal(arr, np.round(arr)):
        out["int list"] = arr.astype(int).tolist()
        out["int array"] = arr.astype(np.int32)
    return out


@pytest.fixture
def int_sequences():
    rng = np.random.default_rng(21)
    return rng.integers(-2, 3, size=(T, I)), rng.integers(-1, 2, size=(T, O))


def run_forward_backward(x, y):
    m = model(seed=5)
    h, outs = m.forward(x)
    loss = m.backward(y)
    return np.concatenate(h), np.concatenate(outs), loss, snapshot(m)


@pytest.mark.parametrize("which", ["inputs", "targets"])
def test_forward_backward_accept_layouts(int_sequences, which):
    x, y = (a.astype(np.float64) for a in int_sequences)
    expected = run_forward_backward(x, y)
    for form, value in layouts(x if which == "inputs" else y).items():
        args = (value, y) if which == "inputs" else (x, value)
        h, outs, loss, params = run_forward_backward(*args)
        assert_close(f"{which} as {form}: h_states", h, expected[0], rtol=0, atol=0)
        assert_close(f"{which} as {form}: outputs", outs, expected[1], rtol=0, atol=0)
        assert loss == expected[2], f"{which} as {form}: loss"
        for name in PARAM_NAMES:
            assert np.array_equal(params[name], expected[3][name]), f"{which} as {form}: {name}"


def test_train_accepts_layouts(int_sequences):
    x, y = (a.astype(np.float64) for a in int_sequences)
    reference_model = model(seed=6)
    reference_model.train([x, x[:2]], [y, y[:2]], epochs=3)
    for form_x, vx in layouts(x).items():
        vy = layouts(y)[form_x]
        m = model(seed=6)
        m.train([vx, x[:2]], [vy, y[:2]], epochs=3)
        for name in PARAM_NAMES:
            assert np.array_equal(getattr(m, name), getattr(reference_model, name)), (
                f"train with {form_x}: {name}")
    # X and y as whole arrays (n, T, I) of int dtype.
    m = model(seed=6)
    m.train(np.stack([x, x]).astype(int), np.stack([y, y]).astype(int), epochs=2)
    ref_m = model(seed=6)
    ref_m.train([x, x], [y, y], epochs=2)
    assert_params_close(m, ref_m, rtol=0, atol=0)


def test_lstm_step_accepts_layouts():
    rng = np.random.default_rng(30)
    args = {k: np.round(3 * v) for k, v in step_args(B=3, seed=30).items()}
    for k in ("bf", "bi", "bo", "bc"):
        args[k] = rng.integers(-2, 3, size=H).astype(float)
    h_exp, c_exp = fastlstm.lstm_step(**args)
    for name in STEP_NAMES:
        for form, value in layouts(args[name]).items():
            changed = dict(args, **{name: value})
            h, c = fastlstm.lstm_step(**changed)
            assert h.dtype == c.dtype == np.float64
            assert_close(f"h_next with {name} as {form}", h, h_exp, rtol=0, atol=0)
            assert_close(f"c_next with {name} as {form}", c, c_exp, rtol=0, atol=0)


def test_forward_accepts_row_vector_steps_like_the_seed():
    x = np.random.default_rng(40).normal(size=(T, I))
    rows = [r.reshape(1, I) for r in x]
    np.random.seed(40)
    ref = reference.LSTM(I, H, O)
    _, y_ref = ref.forward(rows)  # the seed accepts this form
    fast = model(seed=40)
    _, y_fast = fast.forward(rows)
    assert_close("outputs[-1]", y_fast[-1], y_ref[-1])


def test_nan_and_inf_inputs_are_values_not_errors():
    """NaN/inf are values, not bad input: forward runs and they propagate."""
    m = model()
    _, outs = m.forward(np.full((2, I), np.inf))
    assert all(o.shape == (O, 1) for o in outs)
    _, outs = m.forward(np.full((2, I), np.nan))
    assert np.all(np.isnan(np.concatenate(outs)))
