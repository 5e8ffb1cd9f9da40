"""Property tests (Hypothesis) of every public entry point over shapes, dtypes, strides and values.

The properties, for each entry point:

* valid input (any real dtype, lists, non-contiguous / negative-stride / Fortran-order /
  permuted / unaligned / read-only views, byte-swapped arrays) gives the NumPy reference's
  result (``fastlstm.reference``), within float64 rtol 1e-9 / float32 rtol 1e-3 of each
  tensor's largest magnitude, and leaves the caller's arrays unchanged;
* invalid input is refused with a ValueError or TypeError, never another exception and never a
  crash, and the object still works afterwards;
* NaN and inf inputs never raise and give NaN exactly where NumPy does (where the reference is
  itself no oracle, an infinite cell without peepholes, only the weaker properties are checked).

Tests that fail point at bugs of the package, not of the tests: they are left failing on purpose.

Run with the normal suite (``FASTLSTM_FUZZ_EXAMPLES`` examples per test, default 30,
derandomized so that every run draws the same examples; ``.ci/run`` runs them again with
150), or as the dedicated fuzz run with ``bash scripts/fuzz.sh [N]`` (N examples per test,
default 2000, fresh random examples each run; a failure prints the ``@reproduce_failure``
blob that replays it). Like the rest of the suite it tests the *installed* fastlstm.

Environment: ``FASTLSTM_FUZZ_EXAMPLES`` (examples per test), ``FASTLSTM_FUZZ_DERANDOMIZE``
(1, the default: the same examples every run; 0: new random examples each run).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import os
import tempfile
import warnings
import zipfile
from fractions import Fraction
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastlstm
from fastlstm import reference as R
from fastlstm.data import make_windows, temporal_split


def _env_int(name, default):
    raw = os.environ.get(name, "")
    try:
        value = int(raw) if raw.strip() else default
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value


EXAMPLES = _env_int("FASTLSTM_FUZZ_EXAMPLES", 30)
DERANDOMIZE = os.environ.get("FASTLSTM_FUZZ_DERANDOMIZE", "1").strip() != "0"

settings.register_profile(
    "fastlstm-fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,  # failures are reported with their example and blob; nothing is written
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)
#: The profile as a decorator: applied per test, so no other test module's settings change.
FUZZ = settings.get_profile("fastlstm-fuzz")
#: For the few tests whose examples cost much more (a model fit, a zip file per example).
FUZZ_HALF = settings(FUZZ, max_examples=max(10, EXAMPLES // 2))

HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None
needs_sklearn = pytest.mark.skipif(not HAVE_SKLEARN, reason="LSTMRegressor needs scikit-learn")

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
ACTIVATIONS = ("tanh", "relu", "linear")
CLEAN = (ValueError, TypeError)  # the only exceptions invalid input may raise


def size(lo, hi):
    """An integer in [lo, hi], spread evenly (st.integers favours its smallest values inside
    st.data(), and a derandomized run of 50 examples would then barely leave lo), shrinking
    towards lo."""
    return st.integers(0, 2**16).map(lambda v: lo + v % (hi - lo + 1))


# ------------------------------------------------------------------------------------------------
# Comparison helpers
# ------------------------------------------------------------------------------------------------

def rtol_for(dtype):
    return 1e-9 if np.dtype(dtype) == np.float64 else 1e-3


def max_abs(*arrays):
    """The largest finite magnitude among ``arrays`` (0 if none)."""
    m = 0.0
    for a in arrays:
        a = np.abs(np.asarray(a, dtype=np.float64))
        a = a[np.isfinite(a)]
        if a.size:
            m = max(m, float(a.max()))
    return m


def assert_close(name, actual, expected, dtype, scale=None):
    """Elementwise closeness with rtol of ``dtype`` and atol = rtol * ``scale``, by default the
    largest finite magnitude of ``expected`` (pass the scale of a whole group of tensors, e.g.
    all gradients, when one of them may be a sum that nearly cancels); NaNs must sit at the
    same places, infs must be equal."""
    rtol = rtol_for(dtype)
    act = np.asarray(actual, dtype=np.float64)
    exp = np.asarray(expected, dtype=np.float64)
    assert act.shape == exp.shape, f"{name}: shape {act.shape} != expected {exp.shape}"
    scale = max_abs(exp) if scale is None else scale
    # plus a floor at the dtype's smallest normal number: subnormal results carry fewer digits
    atol = rtol * scale + 10 * np.finfo(dtype).tiny
    ok = np.isclose(act, exp, rtol=rtol, atol=atol, equal_nan=True)
    if not ok.all():
        bad = np.argwhere(~ok)
        first = tuple(int(i) for i in bad[0])
        raise AssertionError(
            f"{name}: {len(bad)} of {ok.size} entries differ (rtol {rtol:.0e}, atol {atol:.1e}, "
            f"{np.dtype(dtype).name}); first at {first}: got {act[first]!r}, expected "
            f"{exp[first]!r}")


def assert_same_values(name, before, after):
    assert before.shape == after.shape and np.array_equal(before, after, equal_nan=True), \
        f"{name}: the caller's input was modified"


def _sigmoid(z):
    """The exact logistic function, without overflow."""
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def logical(obj):
    """The values a correct implementation reads from ``obj`` (float64, NaN kept)."""
    return np.array(obj, dtype=np.float64)


# ------------------------------------------------------------------------------------------------
# Strategies: values, and the forms in which the same values are handed over
# ------------------------------------------------------------------------------------------------

SCALES = (1e-3, 0.3, 1.0, 3.0, 30.0)


@st.composite
def real_values(draw, shape, kinds=("normal", "normal", "normal", "hyp", "int", "bool", "zeros"),
                scales=SCALES):
    """A float64 / int64 / bool array of ``shape``. Most values come from a seeded normal
    draw (continuous values keep relu/clip kinks away), some straight from Hypothesis."""
    kind = draw(st.sampled_from(kinds))
    if kind == "hyp":
        return draw(hnp.arrays(np.float64, shape, elements=st.floats(-4, 4, width=32)))
    if kind == "zeros":
        return np.zeros(shape)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "int":
        return rng.integers(-3, 4, size=shape)
    if kind == "bool":
        return rng.random(shape) < 0.5
    return rng.standard_normal(shape) * draw(st.sampled_from(scales))


CASTS = ("keep", "keep", "float32", "float64", "float16", "byteswap", "int32")
LAYOUTS = ("c", "c", "fortran", "permuted", "negative", "strided", "unaligned", "readonly",
           "list", "nested")


def _unaligned(a):
    buf = np.zeros(a.nbytes + 1, np.uint8)
    out = buf[1:].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@st.composite
def presented(draw, arr, casts=CASTS, layouts=LAYOUTS):
    """``arr`` handed over in another form: cast to another real dtype and/or as a strided,
    reversed, Fortran-order, permuted, unaligned or read-only view, a nested list, or a list of
    sub-arrays. Returns the object; ``logical(obj)`` gives the values it holds."""
    a = np.asarray(arr)
    cast = draw(st.sampled_from(casts))
    if cast in ("float32", "float64", "float16") and a.dtype.kind in "fbi":
        a = a.astype(cast)
    elif cast == "byteswap" and a.dtype.itemsize > 1:
        a = a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder != ">" else "<"))
    elif cast == "int32" and a.dtype.kind == "i":
        a = a.astype(np.int32)
    layout = draw(st.sampled_from(layouts))
    if a.ndim == 0:
        return a
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "permuted":
        perm = draw(st.permutations(range(a.ndim)))
        return np.ascontiguousarray(a.transpose(perm)).transpose(np.argsort(perm))
    if layout == "negative":
        rev = (slice(None, None, -1),) * a.ndim
        return np.ascontiguousarray(a[rev])[rev]
    if layout == "strided":
        big = np.zeros(tuple(2 * s + 1 for s in a.shape), a.dtype)
        step = tuple(slice(1, None, 2) for _ in a.shape)
        big[step] = a
        return big[step]
    if layout == "unaligned":
        return _unaligned(a)
    if layout == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    if layout == "list":
        return a.tolist()
    if layout == "nested":
        return list(a)
    return a


# ------------------------------------------------------------------------------------------------
# LSTMLayer helpers
# ------------------------------------------------------------------------------------------------

@st.composite
def layer_configs(draw, clip=st.none() | st.floats(0.05, 5.0), single=False):
    bidirectional = False if single else draw(st.booleans())
    return dict(
        input_size=draw(size(1, 5)), hidden_size=draw(size(1, 6)),
        num_layers=1 if single else draw(size(1, 2)), bidirectional=bidirectional,
        batch_first=draw(st.booleans()), dtype=draw(st.sampled_from(DTYPES)),
        seed=draw(st.integers(0, 2**32 - 1)), activation=draw(st.sampled_from(ACTIVATIONS)),
        peepholes=draw(st.booleans()), clip=draw(clip), input_forget=draw(st.booleans()),
        reverse=(not bidirectional) and draw(st.booleans()))


def ref_params(layer):
    return {k: v.astype(np.float64) for k, v in layer.state_dict().items()}


def as_dtype64(values, dtype):
    """Values as the layer holds them (rounded to its dtype), in float64 for the reference."""
    return None if values is None else np.asarray(values).astype(dtype).astype(np.float64)


def ref_forward(layer, x, h0=None, c0=None):
    with np.errstate(all="ignore"):
        return R.lstm_layer_forward(
            as_dtype64(x, layer.dtype), ref_params(layer), layer.num_layers, layer.bidirectional,
            h0=as_dtype64(h0, layer.dtype), c0=as_dtype64(c0, layer.dtype),
            batch_first=layer.batch_first, activation=layer.activation, clip=layer.clip or 0.0,
            input_forget=layer.input_forget, reverse=layer.reverse)


def kink_margin(layer, cache):
    """How close (relative) any argument of relu or of the cell clip comes to its kink in the
    reference's forward: where it is within rounding, float32 and float64 may take different
    sides and the backward passes legitimately differ."""
    params, D = cache["params"], layer.num_directions
    margin = np.inf

    def rel(dist, z):
        return float(np.min(dist / (1.0 + np.max(np.abs(z))))) if dist.size else np.inf

    for k in range(layer.num_layers):
        x = cache["inputs"][k]
        for d in range(D):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            step = cache["steps"][k * D + d]
            pre = (x @ params["weight_ih" + sfx].T + params["bias_ih" + sfx]
                   + params["bias_hh" + sfx] + step["hidden_prev"] @ params["weight_hh" + sfx].T)
            zi, zf, zg, zo = np.split(pre, 4, axis=-1)
            if "peephole" + sfx in params:
                p_i, p_o, p_f = np.split(params["peephole" + sfx], 3)
                zi, zf = zi + p_i * step["cell_prev"], zf + p_f * step["cell_prev"]
                zo = zo + p_o * step["cell"]
            if layer.clip:
                for z in (zi, zf, zg, zo):
                    margin = min(margin, rel(np.abs(np.abs(z) - layer.clip), z))
            if layer.activation == "relu":
                margin = min(margin, rel(np.abs(zg), zg))
                c = step["cell"]
                nonzero = c[c != 0]  # exact zeros stay exact zeros in both
                margin = min(margin, rel(np.abs(nonzero), c))
    return margin


def backward_comparable(layer, cache):
    if layer.activation != "relu" and not layer.clip:
        return True
    threshold = 1e-4 if layer.dtype == np.float32 else 1e-10
    ok = kink_margin(layer, cache) > threshold
    if not ok:
        event("backward values not compared: an argument of relu/clip sits at its kink")
    return ok


@st.composite
def states(draw, shape, allow_partial=True):
    """None, or (h0, c0) / [h0, c0] (one of them possibly None), each in some form."""
    if draw(st.booleans()):
        return None, None, None
    h0 = draw(real_values(shape))
    c0 = draw(real_values(shape))
    if allow_partial:
        which = draw(st.sampled_from(("both", "both", "h0", "c0")))
        h0 = None if which == "c0" else h0
        c0 = None if which == "h0" else c0
    h_in = None if h0 is None else draw(presented(h0))
    c_in = None if c0 is None else draw(presented(c0))
    container = draw(st.sampled_from((tuple, list)))
    return container((h_in, c_in)), (None if h0 is None else logical(h_in)), \
        (None if c0 is None else logical(c_in))


# ------------------------------------------------------------------------------------------------
# LSTMLayer: forward and backward against the reference
# ------------------------------------------------------------------------------------------------

@FUZZ
@given(cfg=layer_configs(), data=st.data())
def test_layer_forward_backward_match_reference(cfg, data):
    layer = fastlstm.LSTMLayer(**cfg)
    T, B = data.draw(size(1, 6), "T"), data.draw(size(1, 5), "B")
    I, H, D, L = layer.input_size, layer.hidden_size, layer.num_directions, layer.num_layers
    x_shape = (B, T, I) if layer.batch_first else (T, B, I)
    x = data.draw(presented(data.draw(real_values(x_shape))), "x")
    state, h0, c0 = data.draw(states((L * D, B, H)), "state")
    x_before = logical(x)

    y, (h_n, c_n) = layer.forward(x, state)
    y_ref, (h_ref, c_ref), cache = ref_forward(layer, x_before, h0, c0)
    assert_same_values("x", x_before, logical(x))
    for name, got in (("y", y), ("h_n", h_n), ("c_n", c_n)):
        assert got.dtype == layer.dtype, f"{name}: dtype {got.dtype}, layer {layer.dtype}"
    assert_close("y", y, y_ref, layer.dtype)
    assert_close("h_n", h_n, h_ref, layer.dtype)
    assert_close("c_n", c_n, c_ref, layer.dtype)

    dy = data.draw(presented(data.draw(real_values(y.shape))), "dy")
    dstate, dh_n, dc_n = data.draw(states((L * D, B, H)), "dstate")
    dy_before = logical(dy)
    dx, (dh0, dc0) = layer.backward(dy, dstate)
    assert_same_values("dy", dy_before, logical(dy))
    assert dx.shape == x_before.shape and dx.dtype == layer.dtype
    assert dh0.shape == dc0.shape == (L * D, B, H)
    with np.errstate(all="ignore"):
        dx_ref, (dh0_ref, dc0_ref), grads_ref = R.lstm_layer_backward(
            as_dtype64(dy_before, layer.dtype), cache, as_dtype64(dh_n, layer.dtype),
            as_dtype64(dc_n, layer.dtype))
    if backward_comparable(layer, cache):
        # One scale for all gradients, at least that of the incoming gradients: a tensor that
        # is tiny because gates saturate (float32's sigmoid reaches exactly 1 near 17, float64's
        # only near 37) is judged on the scale of the whole backward pass, not its own.
        scale = max(max_abs(dx_ref, dh0_ref, dc0_ref, *grads_ref.values()),
                    max_abs(dy_before, *(a for a in (dh_n, dc_n) if a is not None)))
        assert_close("dx", dx, dx_ref, layer.dtype, scale)
        assert_close("dh0", dh0, dh0_ref, layer.dtype, scale)
        assert_close("dc0", dc0, dc0_ref, layer.dtype, scale)
        for name, g in grads_ref.items():
            assert_close(f"grads[{name}]", layer.grads[name], g, layer.dtype, scale)

    # The inference path computes the same forward; backward after it is refused.
    y_inf, (h_inf, c_inf) = layer.forward(x, state, training=False)
    assert_close("y (training=False)", y_inf, y_ref, layer.dtype)
    assert_close("c_n (training=False)", c_inf, c_ref, layer.dtype)
    with pytest.raises(RuntimeError):
        layer.backward(dy)


# Clips over the whole positive float range, tiny and huge included: the float32 kernels take the
# clip as a float32.
@FUZZ
@given(cfg=layer_configs(clip=st.floats(0, 1e300, exclude_min=True)), data=st.data())
def test_layer_clip_of_any_magnitude_matches_reference(cfg, data):
    try:
        layer = fastlstm.LSTMLayer(**cfg)
    except ValueError as exc:  # a clip that is 0 in the layer's dtype is refused, by name
        assert "clip" in str(exc)
        assert np.dtype(cfg.get("dtype", np.float32)).type(cfg["clip"]) == 0
        return
    T, B = data.draw(size(1, 4), "T"), data.draw(size(1, 3), "B")
    x_shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    x = data.draw(real_values(x_shape, kinds=("normal",)), "x")
    y, (h_n, c_n) = layer.forward(x)
    y_ref, (h_ref, c_ref), _ = ref_forward(layer, x)
    assert_close("y", y, y_ref, layer.dtype)
    assert_close("c_n", c_n, c_ref, layer.dtype)


@FUZZ
@given(cfg=layer_configs(), data=st.data())
def test_layer_nonfinite_input_gives_nan_where_numpy_does(cfg, data):
    layer = fastlstm.LSTMLayer(**cfg)
    T, B = data.draw(size(1, 5), "T"), data.draw(size(1, 4), "B")
    I, H, D, L = layer.input_size, layer.hidden_size, layer.num_directions, layer.num_layers
    x_shape = (B, T, I) if layer.batch_first else (T, B, I)
    x = data.draw(real_values(x_shape, kinds=("normal",)), "x").astype(np.float64)
    bad = st.sampled_from((np.nan, np.nan, np.inf, -np.inf))
    n_bad = data.draw(st.integers(1, 3), "n_bad")
    for _ in range(n_bad):
        idx = tuple(data.draw(st.integers(0, s - 1)) for s in x_shape)
        x[idx] = data.draw(bad)
    h0 = c0 = None
    if data.draw(st.booleans(), "with state"):
        h0 = data.draw(real_values((L * D, B, H), kinds=("normal",))).astype(np.float64)
        c0 = data.draw(real_values((L * D, B, H), kinds=("normal",))).astype(np.float64)
        if data.draw(st.booleans(), "bad state"):
            target = (h0, c0)[data.draw(st.integers(0, 1))]
            target[tuple(data.draw(st.integers(0, s - 1)) for s in target.shape)] = data.draw(bad)
    note(f"x = {x!r}")

    y, (h_n, c_n) = layer.forward(x, None if h0 is None else (h0, c0))
    y_ref, (h_ref, c_ref), cache = ref_forward(layer, x, h0, c0)
    if np.isnan(x).any():
        assert np.isnan(y).any(), "x holds NaN but y holds none"
    assert y.shape == y_ref.shape and y.dtype == layer.dtype
    if not layer.peepholes and any(np.isinf(s["cell"]).any() or np.isinf(s["cell_prev"]).any()
                                   for s in cache["steps"]):
        # The reference adds its peephole term 0 * c even without peepholes, which is NaN for
        # an infinite cell (see test_reference_gates_without_peepholes_ignore_the_cell): it is
        # no oracle for these values.
        event("infinite cell without peepholes: values not compared")
    else:
        assert_close("y", y, y_ref, layer.dtype)
        assert_close("h_n", h_n, h_ref, layer.dtype)
        assert_close("c_n", c_n, c_ref, layer.dtype)

    dy = data.draw(real_values(y.shape, kinds=("normal",)), "dy")
    dx, (dh0, dc0) = layer.backward(dy)  # must not raise
    assert dx.shape == x.shape


@FUZZ
@given(cfg=layer_configs(), data=st.data())
def test_reference_gates_without_peepholes_ignore_the_cell(cfg, data):
    """The oracle itself: without peepholes, i, f, o are the sigmoid of the affine
    preactivations (torch.nn.LSTM's definition), whatever the cell holds, inf included."""
    cfg.update(peepholes=False, clip=None)
    layer = fastlstm.LSTMLayer(**cfg)
    T, B = data.draw(size(1, 4), "T"), data.draw(size(1, 3), "B")
    x_shape = (B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)
    x = data.draw(real_values(x_shape, kinds=("normal",)), "x").astype(np.float64)
    x[tuple(data.draw(st.integers(0, s - 1)) for s in x_shape)] = data.draw(
        st.sampled_from((np.inf, -np.inf, 1e300, 0.0)), "extreme value")
    _, _, cache = ref_forward(layer, x)
    params, D = cache["params"], layer.num_directions
    for k in range(layer.num_layers):
        for d in range(D):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            step = cache["steps"][k * D + d]
            with np.errstate(all="ignore"):
                pre = (cache["inputs"][k] @ params["weight_ih" + sfx].T + params["bias_ih" + sfx]
                       + params["bias_hh" + sfx]
                       + step["hidden_prev"] @ params["weight_hh" + sfx].T)
                zi, zf, _, zo = np.split(pre, 4, axis=-1)
                i, f, _, o = np.split(step["gates"], 4, axis=-1)
                expected = {"i": _sigmoid(zi), "o": _sigmoid(zo)}
                if not layer.input_forget:
                    expected["f"] = _sigmoid(zf)
            for name, got in (("i", i), ("f", f), ("o", o)):
                if name in expected:
                    assert_close(f"reference gate {name}, layer {k} direction {d}", got,
                                 expected[name], np.float64)


# ------------------------------------------------------------------------------------------------
# LSTMLayer: invalid input
# ------------------------------------------------------------------------------------------------

BAD_DTYPES = (np.complex64, np.complex128, object, "U3", "S3", "M8[s]", "m8[s]", np.longdouble,
              "V8", [("a", "f8")])
NON_ARRAYS = (None, "abc", b"abc", {"a": 1}, {1.0, 2.0}, object(), 1 + 2j)


@st.composite
def bad_arrays(draw, good_shape, axes_names, free=()):
    """(value, reason): an array-like that must be refused in place of one of ``good_shape``;
    the axes in ``free`` may have any positive length (changing them would not be an error)."""
    kind = draw(st.sampled_from(("ndim", "size", "empty", "dtype", "ragged", "non_array",
                                 "strings")))
    n = len(good_shape)
    if kind == "ndim":
        ndim = draw(st.integers(0, 5).filter(lambda k: k != n))
        shape = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
        return draw(presented(np.ones(shape), layouts=("c", "list"))), f"ndim {ndim}"
    if kind == "size":
        axis = draw(st.sampled_from([a for a in range(n) if a not in free]))
        shape = list(good_shape)
        shape[axis] = draw(st.integers(0, 7).filter(lambda s: s != good_shape[axis]))
        return np.ones(shape), f"{axes_names[axis]} = {shape[axis]}"
    if kind == "empty":
        axis = draw(st.integers(0, n - 1))
        shape = list(good_shape)
        shape[axis] = 0
        return np.ones(shape), f"empty {axes_names[axis]}"
    if kind == "dtype":
        dt = draw(st.sampled_from(BAD_DTYPES))
        return np.zeros(good_shape, dtype=dt), f"dtype {np.dtype(dt)}"
    if kind == "ragged":
        if n == 1:
            return [1.0, [1.0, 2.0]], "ragged"
        inner = good_shape[1:]
        longer = (inner[0] + 1,) + inner[1:]
        return [np.ones(inner).tolist(), np.ones(longer).tolist()], "ragged"
    if kind == "strings":
        return np.full(good_shape, "1.0").tolist(), "strings"
    return draw(st.sampled_from(NON_ARRAYS)), "not an array"


def _shape_of(value):
    """The shape of ``np.asarray(value)`` when it is a real numeric array, else None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            arr = np.asarray(value)
        except Exception:
            return None
    return arr.shape if arr.dtype.kind in "biuf" else None


def _tiny_layer(draw):
    return fastlstm.LSTMLayer(
        draw(st.integers(1, 3)), draw(st.integers(1, 3)), num_layers=draw(st.integers(1, 2)),
        bidirectional=draw(st.booleans()), batch_first=draw(st.booleans()),
        dtype=draw(st.sampled_from(DTYPES)), seed=0)


@FUZZ
@given(data=st.data())
def test_layer_refuses_invalid_input_cleanly(data):
    layer = _tiny_layer(data.draw)
    T, B = 3, 2
    I, H, D, L = layer.input_size, layer.hidden_size, layer.num_directions, layer.num_layers
    good_x = np.ones((B, T, I) if layer.batch_first else (T, B, I))
    good_state = (np.zeros((L * D, B, H)), np.zeros((L * D, B, H)))
    what = data.draw(st.sampled_from(("x", "state", "h0", "c0", "dy", "dstate", "dh_n")))
    state_names = ("L*D", "B", "H")
    if what == "x":
        names = ("B", "T", "I") if layer.batch_first else ("T", "B", "I")
        bad, reason = data.draw(bad_arrays(good_x.shape, names, free=(0, 1)))
        call = lambda: layer.forward(bad)  # noqa: E731
    elif what == "state" or what == "dstate":
        bad = data.draw(st.sampled_from((
            np.zeros((2, L * D, B, H)), 0, "ab", {"h0": 1}, (good_state[0],),
            (good_state[0], good_state[1], good_state[1]), [])))
        reason = f"{what} = {type(bad).__name__}"
        if what == "state":
            call = lambda: layer.forward(good_x, bad)  # noqa: E731
        else:
            layer.forward(good_x)
            call = lambda: layer.backward(np.ones((B, T, D * H) if layer.batch_first  # noqa
                                                  else (T, B, D * H)), bad)
    elif what in ("h0", "c0"):
        bad, reason = data.draw(bad_arrays(good_state[0].shape, state_names))
        bad = "abc" if bad is None else bad  # None is a valid h0 or c0 (zeros)
        state = (bad, good_state[1]) if what == "h0" else (good_state[0], bad)
        call = lambda: layer.forward(good_x, state)  # noqa: E731
    else:
        layer.forward(good_x)
        y_shape = (B, T, D * H) if layer.batch_first else (T, B, D * H)
        if what == "dy":
            names = ("B", "T", "D*H") if layer.batch_first else ("T", "B", "D*H")
            bad, reason = data.draw(bad_arrays(y_shape, names))
            bad = "abc" if bad is None else bad  # None is a valid dy (zeros)
            call = lambda: layer.backward(bad)  # noqa: E731
        else:
            bad, reason = data.draw(bad_arrays(good_state[0].shape, state_names))
            bad = "abc" if bad is None else bad  # None is a valid dh_n (zeros)
            call = lambda: layer.backward(np.ones(y_shape), (bad, good_state[1]))  # noqa: E731
    note(f"{what}: {reason}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CLEAN):
            call()
    # the layer still works
    y, _ = layer.forward(good_x)
    layer.backward(np.ones_like(y))
    assert np.isfinite(y).all()


# Arguments of the constructors: each test makes one argument odd and keeps the others valid, so
# that the odd one is the argument checked.
SIZE_ARGS = (size(1, 4) | st.integers(-2, 0)
             | st.sampled_from((True, 2.0, "3", None, np.int64(2), np.float64(2.0), [2])))
DTYPE_ARGS = st.sampled_from((np.float32, np.float64, "float32", "float64", "f4", "d", np.int32,
                              np.float16, np.longdouble, np.complex64, object, None, "banana",
                              ",", "f4,", "(2,)f4", "b1,i2", "(", "M8[s]", "T", 3, [("a", "f4")],
                              {"names": ["a"], "formats": ["f4"]})) | st.text(max_size=4)
ANY_ARGS = st.sampled_from((True, False, 0, 1, 2.5, None, "yes", np.nan, np.inf, -1.0, (),
                            np.array([1, 2])))
LAYER_ARGS = {
    "input_size": SIZE_ARGS, "hidden_size": SIZE_ARGS, "num_layers": SIZE_ARGS,
    "bidirectional": ANY_ARGS, "batch_first": ANY_ARGS, "dtype": DTYPE_ARGS,
    "seed": st.integers(-3, 2**70) | ANY_ARGS | st.text(max_size=2),
    "activation": st.sampled_from(ACTIVATIONS) | st.text(max_size=5) | ANY_ARGS,
    "peepholes": ANY_ARGS, "clip": st.floats() | ANY_ARGS | st.text(max_size=3),
    "input_forget": ANY_ARGS, "reverse": ANY_ARGS}
SEED_LSTM_ARGS = {
    "input_size": SIZE_ARGS, "hidden_size": SIZE_ARGS, "output_size": SIZE_ARGS,
    "learning_rate": st.floats() | ANY_ARGS | st.text(max_size=3), "dtype": DTYPE_ARGS,
    "verbose": ANY_ARGS, "clip": st.floats() | ANY_ARGS | st.text(max_size=3)}


def _construct(cls, kwargs):
    """The object, or None when the constructor refused its arguments cleanly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy's deprecation of some dtype aliases
        np_state = np.random.get_state()
        try:
            return cls(**kwargs)
        except CLEAN:
            return None
        finally:
            np.random.set_state(np_state)


def _exercise(obj):
    """A constructed object computes."""
    if isinstance(obj, fastlstm.LSTMLayer):
        y, _ = obj.forward(np.ones((2, 1, obj.input_size)))
        assert y.shape == (2, 1, obj.num_directions * obj.hidden_size)
    else:
        _, out = obj.forward(np.ones((2, obj.input_size)))
        assert len(out) == 2 and out[0].shape == (obj.output_size, 1)


@FUZZ
@given(cls=st.sampled_from(("LSTMLayer", "LSTM")), data=st.data())
def test_constructors_refuse_an_invalid_argument_cleanly(cls, data):
    args = LAYER_ARGS if cls == "LSTMLayer" else SEED_LSTM_ARGS
    name = data.draw(st.sampled_from(sorted(args)), "argument")
    kwargs = {"input_size": 2, "hidden_size": 3, ("output_size" if cls == "LSTM"
                                                   else "num_layers"): 1}
    kwargs[name] = data.draw(args[name], name)
    obj = _construct(getattr(fastlstm, cls), kwargs)
    if obj is not None:
        event(f"{cls}: {name} accepted")
        _exercise(obj)


@FUZZ
@given(cls=st.sampled_from(("LSTMLayer", "LSTM")), dtype=DTYPE_ARGS)
def test_dtype_argument_is_float32_float64_or_a_clean_type_error(cls, dtype):
    obj = _construct(getattr(fastlstm, cls), {"input_size": 2, "hidden_size": 2,
                                              **({"output_size": 1} if cls == "LSTM" else {}),
                                              "dtype": dtype})
    if obj is not None:
        assert np.dtype(obj.dtype) in DTYPES
        _exercise(obj)


# ------------------------------------------------------------------------------------------------
# fastlstm.LSTM (the notebook class) against reference.LSTM
# ------------------------------------------------------------------------------------------------

@st.composite
def sequence_forms(draw, T, F):
    """(object, (T, F) float64 values): one sequence of T steps of F values in one of the forms
    fastlstm.LSTM.forward accepts (a list of scalars, of (F,) vectors, of (F, 1) columns, an
    array (T,), (T, F), (T, F, 1) or (T, 1, F)), in any dtype and layout."""
    vals = draw(real_values((T, F)))
    forms = ["array2d", "col3d", "row3d", "list_vectors", "list_columns", "tuple_vectors",
             "list_lists"]
    if F == 1:
        forms += ["array1d", "list_scalars"]
    form = draw(st.sampled_from(forms))
    if form == "array2d":
        obj = draw(presented(vals))
    elif form == "col3d":
        obj = draw(presented(vals.reshape(T, F, 1)))
    elif form == "row3d":
        obj = draw(presented(vals.reshape(T, 1, F)))
    elif form == "array1d":
        obj = draw(presented(vals.reshape(T)))
    elif form == "list_scalars":
        obj = vals.reshape(T).tolist()
    elif form == "list_vectors":
        obj = [draw(presented(v, layouts=("c", "negative", "strided", "list"))) for v in vals]
    elif form == "tuple_vectors":
        obj = tuple(np.asarray(v) for v in vals)
    elif form == "list_columns":
        obj = [draw(presented(v.reshape(F, 1), layouts=("c", "fortran", "list"))) for v in vals]
    else:
        obj = vals.tolist()
    return obj, np.array(logical(obj)).reshape(T, F)


def _seed_pair(I, H, O, dtype, seed):
    """fastlstm.LSTM and reference.LSTM drawn from the same global seed (the global RNG is
    restored afterwards)."""
    np_state = np.random.get_state()
    try:
        np.random.seed(seed)
        fast = fastlstm.LSTM(I, H, O, dtype=dtype, verbose=False)
        np.random.seed(seed)
        ref = R.LSTM(I, H, O)
    finally:
        np.random.set_state(np_state)
    for name in ("Wf", "Wi", "Wc", "Wo", "Wy"):
        assert_close(f"initial {name}", getattr(fast, name), getattr(ref, name), dtype)
        setattr(ref, name, getattr(fast, name).astype(np.float64))  # the rounded float32 values
    return fast, ref


SEED_PARAMS = ("Wf", "Wi", "Wc", "Wo", "Wy", "bf", "bi", "bc", "bo", "by")
SEED_STATES = ("f_gates", "i_gates", "c_tildes", "o_gates", "c_states", "h_states")


@FUZZ
@given(I=size(1, 5), H=size(1, 5), O=size(1, 4), T=size(1, 6),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_seed_lstm_forward_backward_match_reference(I, H, O, T, dtype, seed, data):
    fast, ref = _seed_pair(I, H, O, dtype, seed)
    inputs, x = data.draw(sequence_forms(T, I), "inputs")
    targets, y = data.draw(sequence_forms(T, O), "targets")
    x_before = logical(inputs)
    x_ref, y_ref = as_dtype64(x, dtype), as_dtype64(y, dtype)
    for rnd in range(2):  # two rounds: the update of the first is seen by the second
        h_states, outputs = fast.forward(inputs)
        h_ref, out_ref = ref.forward(list(x_ref))
        assert len(h_states) == len(outputs) == T
        assert all(h.shape == (H, 1) for h in h_states) and all(o.shape == (O, 1)
                                                                 for o in outputs)
        assert_close(f"round {rnd}: h_states", np.array(h_states), np.array(h_ref), dtype)
        assert_close(f"round {rnd}: outputs", np.array(outputs), np.array(out_ref), dtype)
        for name in SEED_STATES:
            assert_close(f"round {rnd}: {name}", np.array(getattr(fast, name)),
                         np.array(getattr(ref, name)), dtype)
        loss = fast.backward(targets)
        loss_ref = ref.backward(list(y_ref))
        assert_close(f"round {rnd}: loss", loss, loss_ref, dtype)
        # the updates are sums that may nearly cancel (by with O = 1): judged on the scale of
        # all parameters together
        scale = max_abs(*(getattr(ref, n) for n in SEED_PARAMS))
        for name in SEED_PARAMS:
            assert_close(f"round {rnd}: {name}", getattr(fast, name), getattr(ref, name), dtype,
                         scale)
    assert_same_values("inputs", x_before, logical(inputs))


@FUZZ
@given(I=size(1, 3), H=size(1, 4), O=size(1, 3),
       lengths=st.lists(size(1, 4), min_size=1, max_size=3), epochs=size(1, 3),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_seed_lstm_train_matches_reference(I, H, O, lengths, epochs, dtype, seed, data):
    fast, ref = _seed_pair(I, H, O, dtype, seed)
    uniform = len(set(lengths)) == 1 and data.draw(st.booleans(), "stacked arrays")
    if uniform:  # the (n, T, I) array form
        X = data.draw(real_values((len(lengths), lengths[0], I)), "X")
        Y = data.draw(real_values((len(lengths), lengths[0], O)), "Y")
        X_train, Y_train = data.draw(presented(X)), data.draw(presented(Y))
        xs, ys = list(logical(X_train)), list(logical(Y_train))
    else:
        pairs = [(data.draw(sequence_forms(T, I)), data.draw(sequence_forms(T, O)))
                 for T in lengths]
        X_train, Y_train = [p[0][0] for p in pairs], [p[1][0] for p in pairs]
        xs, ys = [p[0][1] for p in pairs], [p[1][1] for p in pairs]
    losses = fast.train(X_train, Y_train, epochs=epochs)
    with contextlib.redirect_stdout(io.StringIO()):
        losses_ref = ref.train([list(as_dtype64(x, dtype)) for x in xs],
                               [list(as_dtype64(y, dtype)) for y in ys], epochs=epochs)
    assert_close("losses", losses, losses_ref, dtype)
    scale = max_abs(*(getattr(ref, n) for n in SEED_PARAMS))
    for name in SEED_PARAMS:
        assert_close(name, getattr(fast, name), getattr(ref, name), dtype, scale)


@FUZZ
@given(I=size(1, 3), H=size(1, 3), T=size(1, 5), data=st.data())
def test_seed_lstm_nan_input(I, H, T, data):
    fast, ref = _seed_pair(I, H, 1, np.float64, 0)
    x = data.draw(real_values((T, I), kinds=("normal",)), "x")
    x[data.draw(st.integers(0, T - 1)), data.draw(st.integers(0, I - 1))] = np.nan
    h_states, outputs = fast.forward(x)
    with np.errstate(all="ignore"):
        h_ref, out_ref = ref.forward(list(x))
    assert_close("h_states", np.array(h_states), np.array(h_ref), np.float64)
    assert_close("outputs", np.array(outputs), np.array(out_ref), np.float64)
    before = {n: getattr(fast, n).copy() for n in SEED_PARAMS}
    # documented: a NaN loss stops before any weight changes (NonFiniteLossError)
    with pytest.raises(fastlstm.NonFiniteLossError):
        fast.backward(np.zeros((T, 1)))
    for n in SEED_PARAMS:
        assert_same_values(n, before[n], getattr(fast, n))


@st.composite
def bad_sequences(draw, T, F):
    kind = draw(st.sampled_from(("features", "empty", "dtype", "ragged", "scalar", "string",
                                 "non_array", "ndim")))
    if kind == "features":
        f = draw(st.integers(0, 6).filter(lambda k: k != F))
        shape = draw(st.sampled_from(((T, f), (T, f, 1), (T, 1, f))))
        return np.ones(shape), f"{f} features"
    if kind == "empty":
        return draw(st.sampled_from(([], (), np.zeros((0, F)), np.zeros(0)))), "empty"
    if kind == "dtype":
        return np.zeros((T, F), dtype=draw(st.sampled_from(BAD_DTYPES))), "dtype"
    if kind == "ragged":
        return [[1.0] * F, [1.0] * (F + 1)], "ragged"
    if kind == "scalar":
        return draw(st.sampled_from((1.0, 3, np.float64(2.0), np.array(1.0), None))), "scalar"
    if kind == "string":
        return draw(st.sampled_from(("abc", b"abc", ["a"] * T, [["1"] * F] * T))), "strings"
    if kind == "ndim":
        return np.ones((T, F, 2, 2)), "4-d"
    return draw(st.sampled_from(({0: 1.0}, {1.0}, object(), iter([1.0])))), "not a sequence"


@FUZZ
@given(I=st.integers(1, 3), H=st.integers(1, 3), O=st.integers(1, 3), T=st.integers(1, 4),
       data=st.data())
def test_seed_lstm_refuses_invalid_input_cleanly(I, H, O, T, data):
    fast, _ = _seed_pair(I, H, O, np.float64, 0)
    good_x, good_y = np.ones((T, I)), np.ones((T, O))
    what = data.draw(st.sampled_from(("inputs", "targets", "targets_length", "train")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if what == "inputs":
            bad, reason = data.draw(bad_sequences(T, I))
            note(reason)
            with pytest.raises(CLEAN):
                fast.forward(bad)
        elif what == "targets":
            bad, reason = data.draw(bad_sequences(T, O))
            note(reason)
            fast.forward(good_x)
            with pytest.raises(CLEAN):
                fast.backward(bad)
        elif what == "targets_length":
            fast.forward(good_x)
            T2 = data.draw(st.integers(1, 6).filter(lambda k: k != T))
            with pytest.raises(CLEAN):
                fast.backward(np.ones((T2, O)))
        else:
            pair = data.draw(st.sampled_from(("x", "y", "lengths", "types")))
            bad, reason = data.draw(bad_sequences(T, O if pair == "y" else I))
            note(f"{pair}: {reason}")
            args = {"x": ([bad], [good_y]), "y": ([good_x], [bad]),
                    "lengths": ([good_x, good_x], [good_y]), "types": (5, [good_y])}[pair]
            with pytest.raises(CLEAN):
                fast.train(*args, epochs=1)
    fast.forward(good_x)
    assert np.isfinite(fast.backward(good_y))


# ------------------------------------------------------------------------------------------------
# lstm_step against reference.lstm_step
# ------------------------------------------------------------------------------------------------

STEP_NAMES = ("x_t", "h_prev", "c_prev", "Wf", "Wi", "Wo", "Wc", "bf", "bi", "bo", "bc")


@FUZZ
@given(I=size(1, 5), H=size(1, 5), B=st.none() | size(1, 4),
       return_gates=st.booleans(), data=st.data())
def test_lstm_step_matches_reference(I, H, B, return_gates, data):
    lead = () if B is None else (B,)
    shapes = dict(x_t=lead + (I,), h_prev=lead + (H,), c_prev=lead + (H,))
    shapes.update({w: (H, H + I) for w in ("Wf", "Wi", "Wo", "Wc")})
    bias_shape = data.draw(st.sampled_from(((H,), (H, 1))), "bias shape")
    shapes.update({b: bias_shape for b in ("bf", "bi", "bo", "bc")})
    args, values = {}, {}
    all_float32 = data.draw(st.booleans(), "all float32")
    for name in STEP_NAMES:
        v = data.draw(real_values(shapes[name]), name)
        if all_float32:
            obj = data.draw(presented(v.astype(np.float32), casts=("keep",),
                                      layouts=("c", "fortran", "negative", "strided",
                                               "unaligned", "readonly")))
        else:
            obj = data.draw(presented(v))
        args[name], values[name] = obj, logical(obj)
    native32 = all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in args.values())
    native = all(isinstance(a, np.ndarray) and a.dtype.isnative and a.dtype.kind == "f"
                 for a in args.values())
    before = {n: logical(a) for n, a in args.items()}

    out = fastlstm.lstm_step(*args.values(), return_gates=return_gates)
    h_t, c_t = out[:2]
    dtype = h_t.dtype
    if native32:
        assert dtype == np.float32
    elif native and any(a.dtype == np.float64 for a in args.values()):
        assert dtype == np.float64
    assert h_t.shape == c_t.shape == shapes["h_prev"]
    for n in STEP_NAMES:
        assert_same_values(n, before[n], logical(args[n]))

    v = {n: as_dtype64(values[n], dtype) for n in STEP_NAMES}
    b = {n: v[n].reshape(H) for n in ("bf", "bi", "bo", "bc")}
    rows = [None] if B is None else range(B)
    for r in rows:
        sel = (lambda a: a) if r is None else (lambda a, r=r: a[r])
        with np.errstate(over="ignore"):
            h_ref, c_ref = R.lstm_step(sel(v["x_t"]), sel(v["h_prev"]), sel(v["c_prev"]),
                                       v["Wf"], v["Wi"], v["Wo"], v["Wc"],
                                       b["bf"], b["bi"], b["bo"], b["bc"])
        assert_close(f"h_t[{r}]", sel(h_t), h_ref, dtype)
        assert_close(f"c_t[{r}]", sel(c_t), c_ref, dtype)
        if return_gates:
            z = np.concatenate((sel(v["h_prev"]), sel(v["x_t"])))
            expected = {"input": _sigmoid(v["Wi"] @ z + b["bi"]),
                        "forget": _sigmoid(v["Wf"] @ z + b["bf"]),
                        "candidate": np.tanh(v["Wc"] @ z + b["bc"]),
                        "output": _sigmoid(v["Wo"] @ z + b["bo"])}
            gates = out[2]
            assert set(gates) == set(expected)
            for g, e in expected.items():
                assert gates[g].shape == shapes["h_prev"]
                assert_close(f"gates[{g}][{r}]", sel(gates[g]), e, dtype)


@FUZZ
@given(I=st.integers(1, 3), H=st.integers(1, 3), B=st.none() | st.integers(1, 3),
       data=st.data())
def test_lstm_step_refuses_invalid_input_cleanly(I, H, B, data):
    lead = () if B is None else (B,)
    shapes = dict(x_t=lead + (I,), h_prev=lead + (H,), c_prev=lead + (H,))
    shapes.update({w: (H, H + I) for w in ("Wf", "Wi", "Wo", "Wc")})
    shapes.update({b: (H,) for b in ("bf", "bi", "bo", "bc")})
    args = {n: np.full(s, 0.1) for n, s in shapes.items()}
    victim = data.draw(st.sampled_from(STEP_NAMES), "argument")
    names = tuple(f"axis{k}" for k in range(len(shapes[victim])))
    bad, reason = data.draw(bad_arrays(shapes[victim], names))
    if victim.startswith("b") and _shape_of(bad) == (H, 1):
        bad = np.ones((H, 2))  # (H, 1) is a valid bias
    if _shape_of(bad) == () and shapes[victim] == (1,):
        # lenient, not asserted: a 0-d array is read as the one value of a (1,) vector
        bad = np.ones(2)
    args[victim] = bad
    note(f"{victim}: {reason}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CLEAN):
            fastlstm.lstm_step(*args.values())


# ------------------------------------------------------------------------------------------------
# fastlstm.data
# ------------------------------------------------------------------------------------------------

@st.composite
def targets_for(draw, F):
    kind = draw(st.sampled_from(("none", "int", "list", "tuple")))
    if kind == "none":
        return None
    cols = st.integers(-F, F - 1)
    if kind == "int":
        return draw(cols)
    picked = draw(st.lists(cols, min_size=1, max_size=F, unique_by=lambda c: c % F))
    return picked if kind == "list" else tuple(picked)


@FUZZ
@given(n=size(0, 20), F=st.none() | size(1, 4), lookback=size(1, 6),
       horizon=size(1, 4), stride=size(1, 4), data=st.data())
def test_make_windows_matches_slicing_loop(n, F, lookback, horizon, stride, data):
    shape = (n,) if F is None else (n, F)
    vals = data.draw(real_values(shape, kinds=("normal", "int", "bool", "hyp")), "values")
    if vals.dtype.kind == "f" and n and data.draw(st.booleans(), "with NaN"):
        vals.reshape(-1)[data.draw(st.integers(0, vals.size - 1))] = np.nan
    series = data.draw(presented(vals), "series")
    target = data.draw(targets_for(1 if F is None else F), "target")
    arr = logical(series)
    table = arr.reshape(n, 1 if F is None else F)
    n_features = table.shape[1]
    if target is None:
        cols, single = list(range(n_features)), n_features == 1
    elif isinstance(target, int):
        cols, single = [target % n_features], True
    else:
        cols, single = [c % n_features for c in target], False
    starts = list(range(0, n - lookback - horizon + 1, stride))
    if not starts:
        with pytest.raises(ValueError):
            make_windows(series, lookback, horizon=horizon, target=target, stride=stride)
        return
    X, y = make_windows(series, lookback, horizon=horizon, target=target, stride=stride)
    X_ref = np.array([table[s:s + lookback] for s in starts])
    y_ref = np.array([table[s + lookback:s + lookback + horizon][:, cols] for s in starts])
    if single:
        y_ref = y_ref[:, :, 0]
    if horizon == 1:
        y_ref = y_ref[:, 0]
    assert X.shape == X_ref.shape and y.shape == y_ref.shape, (X.shape, y.shape)
    assert np.array_equal(X, X_ref, equal_nan=True) and np.array_equal(y, y_ref, equal_nan=True)
    assert X.flags.c_contiguous and y.flags.c_contiguous
    src = np.asarray(series)
    if isinstance(series, np.ndarray):
        assert not np.shares_memory(X, src) and not np.shares_memory(y, src)
    if isinstance(series, np.ndarray) and src.dtype.isnative:
        expected = {"f": np.float32 if src.dtype.itemsize <= 4 else np.float64}.get(
            src.dtype.kind, np.float64)
        assert X.dtype == y.dtype == expected, (src.dtype, X.dtype)


@FUZZ
@given(data=st.data())
def test_make_windows_refuses_invalid_input_cleanly(data):
    good = np.arange(24.0).reshape(8, 3)
    kwargs = dict(lookback=2, horizon=1, target=None, stride=1)
    what = data.draw(st.sampled_from(("series", "lookback", "horizon", "stride", "target")))
    if what == "series":
        kind = data.draw(st.sampled_from(("ndim", "dtype", "ragged", "non_array", "no_columns",
                                          "too_short")))
        if kind == "ndim":
            bad = data.draw(st.sampled_from((1.0, np.float64(2.0), np.array(3.0),
                                             np.ones((3, 2, 2)), np.ones((2, 1, 1, 1)))))
        elif kind == "dtype":
            bad = np.zeros((8, 3), dtype=data.draw(st.sampled_from(BAD_DTYPES)))
        elif kind == "ragged":
            bad = [[1.0, 2.0], [1.0]]
        elif kind == "non_array":
            bad = data.draw(st.sampled_from(NON_ARRAYS))
        elif kind == "no_columns":
            bad = np.zeros((8, 0))
        else:
            bad = np.zeros(data.draw(st.integers(0, 2)))
        args = (bad,)
    else:
        args = (good,)
        if what == "target":
            kwargs["target"] = data.draw(st.sampled_from((
                3, -4, 99, [0, 0], [0, -3], [], (), 1.0, True, [True], ["a"], "0", {0},
                np.float64(1.0), [1.5])))
        else:
            kwargs[what] = data.draw(st.sampled_from((0, -1, 1.5, "2", None, True, np.nan,
                                                      2.0, [1])))
    note(f"{what}: {args} {kwargs}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CLEAN):
            make_windows(*args, **kwargs)


def _n_test_bounds(n, test_size):
    """ceil(n * test_size) for a fraction, tolerating float noise just above an integer."""
    exact = Fraction(float(test_size)) * n
    return math.ceil(exact - Fraction(1, 10**6)), math.ceil(exact)


@FUZZ
@given(n=size(0, 15), k=size(1, 3),
       test_size=st.floats(0, 1) | st.integers(-2, 17) | st.sampled_from((0.2, 0.25, 0.3, 0.5)),
       data=st.data())
def test_temporal_split_matches_slicing(n, k, test_size, data):
    arrays, plain = [], []
    for _ in range(k):
        vals = data.draw(real_values((n, data.draw(st.integers(1, 2)))))
        kind = data.draw(st.sampled_from(("array", "view", "list", "tuple", "1d")))
        if kind == "array":
            obj = vals
        elif kind == "view":
            obj = data.draw(presented(vals, casts=("keep",),
                                      layouts=("fortran", "negative", "strided")))
        elif kind == "list":
            obj = vals.tolist()
        elif kind == "tuple":
            obj = tuple(vals.tolist())
        else:
            obj = vals[:, 0]
        arrays.append(obj)
        plain.append(list(np.asarray(obj).tolist()))
    if isinstance(test_size, int):
        lo = hi = test_size
    else:
        lo, hi = _n_test_bounds(n, test_size)
    valid = any(0 < c < n for c in range(lo, hi + 1)) and (
        isinstance(test_size, int) or 0 < test_size < 1)
    must_fail = all(not 0 < c < n for c in range(lo, hi + 1)) or (
        not isinstance(test_size, int) and not 0 < test_size < 1)
    try:
        out = temporal_split(*arrays, test_size=test_size)
    except ValueError:
        assert not valid or lo != hi, f"refused a valid split of {n} rows, test_size={test_size}"
        return
    assert not must_fail, f"accepted test_size={test_size!r} on {n} rows"
    assert len(out) == 2 * k
    n_test = len(out[1])
    assert lo <= n_test <= hi and 0 < n_test < n
    for j, (obj, ref) in enumerate(zip(arrays, plain)):
        train, test = out[2 * j], out[2 * j + 1]
        assert type(train) is type(obj) and type(test) is type(obj)
        assert list(np.asarray(train).tolist()) == ref[:n - n_test]
        assert list(np.asarray(test).tolist()) == ref[n - n_test:]


@FUZZ
@given(data=st.data())
def test_temporal_split_refuses_invalid_input_cleanly(data):
    kind = data.draw(st.sampled_from(("lengths", "none", "test_size", "no_len")))
    if kind == "lengths":
        a, b = data.draw(st.integers(0, 6)), data.draw(st.integers(0, 6))
        if a == b:
            b += 1
        args, kwargs = (np.zeros(a), list(range(b))), {}
    elif kind == "none":
        args, kwargs = (), {"test_size": data.draw(st.sampled_from((0.2, 1)))}
    elif kind == "no_len":
        args, kwargs = (np.zeros(4), data.draw(st.sampled_from((1, 2.0, None, np.float64(1),
                                                                object())))), {}
    else:
        args = (np.zeros(data.draw(st.integers(0, 6))),)
        kwargs = {"test_size": data.draw(st.sampled_from((
            0.0, 1.0, -0.1, 1.5, np.nan, np.inf, -np.inf, True, False, "0.2", None, [0.2],
            1j, 0, -1, 10**30, np.float32(0.0)) ) | st.floats(1, 1e300, exclude_min=True))}
    note(f"{args} {kwargs}")
    with pytest.raises(CLEAN):
        temporal_split(*args, **kwargs)


# ------------------------------------------------------------------------------------------------
# LSTMRegressor
# ------------------------------------------------------------------------------------------------

@st.composite
def regression_data(draw):
    n, T, F = draw(size(2, 20)), draw(size(1, 5)), draw(size(1, 3))
    two_d = F == 1 and draw(st.booleans())
    X = draw(real_values((n, T) if two_d else (n, T, F), kinds=("normal", "int", "hyp")))
    if draw(st.booleans()):  # a nearly constant feature: a tiny but nonzero standard deviation
        X = X.astype(np.float64)
        feature = (slice(None), slice(None)) + (() if two_d else (draw(size(0, F - 1)),))
        spread = draw(st.sampled_from((1e-8, 1e-20, 1e-40)))
        X[feature] = spread * (np.arange(n * T).reshape(n, T) % 2)
    k = draw(st.none() | st.integers(1, 3))
    y = draw(real_values((n,) if k is None else (n, k), kinds=("normal", "int")))
    return X, y, k


def _regressor(data):
    from fastlstm import LSTMRegressor
    return LSTMRegressor(
        hidden_size=3, epochs=1, batch_size=data.draw(st.integers(1, 8), "batch_size"),
        num_layers=data.draw(st.integers(1, 2), "num_layers"),
        activation=data.draw(st.sampled_from(ACTIVATIONS), "activation"),
        bidirectional=data.draw(st.booleans(), "bidirectional"),
        optimizer=data.draw(st.sampled_from(("adam", "sgd")), "optimizer"),
        standardize=data.draw(st.booleans(), "standardize"),
        dtype=data.draw(st.sampled_from(("float32", "float64")), "dtype"),
        random_state=data.draw(st.integers(0, 2**31), "random_state"))


@needs_sklearn
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@FUZZ_HALF
@given(d=regression_data(), data=st.data())
def test_regressor_small_fits_predict_finite_values_of_the_right_shape(d, data):
    X, y, k = d
    est = _regressor(data)
    X_in, y_in = data.draw(presented(X), "X form"), data.draw(presented(y), "y form")
    est.fit(X_in, y_in)
    n = len(X)
    pred = est.predict(X_in)
    assert pred.shape == ((n,) if k is None else (n, k))
    assert np.isfinite(pred).all(), f"predictions {pred} for the training X"
    m = data.draw(size(1, 4), "new samples")
    X_new = data.draw(real_values((m,) + X.shape[1:], kinds=("normal",)), "X_new")
    pred_new = est.predict(X_new)
    assert pred_new.shape == ((m,) if k is None else (m, k))
    assert np.isfinite(pred_new).all(), (
        f"predictions {pred_new} for finite X_new (x_scale_ {est.x_scale_})")


@needs_sklearn
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@FUZZ_HALF
@given(d=regression_data(), data=st.data())
def test_regressor_refuses_nonfinite_and_misshaped_data(d, data):
    X, y, _ = d
    est = _regressor(data)
    X, y = X.astype(np.float64), y.astype(np.float64)
    bad = data.draw(st.sampled_from((np.nan, np.inf, -np.inf)), "bad value")
    where = data.draw(st.sampled_from(("X", "y", "predict", "features")), "where")
    note(f"{bad} in {where}")
    if where == "X":
        X.reshape(-1)[data.draw(st.integers(0, X.size - 1))] = bad
        with pytest.raises(ValueError):
            est.fit(X, y)
        return
    if where == "y":
        y.reshape(-1)[data.draw(st.integers(0, y.size - 1))] = bad
        with pytest.raises(ValueError):
            est.fit(X, y)
        return
    est.fit(X, y)
    if where == "predict":
        X.reshape(-1)[data.draw(st.integers(0, X.size - 1))] = bad
        with pytest.raises(ValueError):
            est.predict(X)
    else:
        shape = list(X.shape)
        shape[-1] += 1
        with pytest.raises(ValueError):
            est.predict(np.zeros(shape))


# ------------------------------------------------------------------------------------------------
# save / load
# ------------------------------------------------------------------------------------------------

def _fitted_regressor():
    from fastlstm import LSTMRegressor
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3, 2))
    return LSTMRegressor(hidden_size=2, epochs=1, random_state=0).fit(X, X[:, -1, :])


@lru_cache(maxsize=None)
def _valid_files():
    """name -> (bytes of a valid file, the saved object)."""
    np_state = np.random.get_state()
    np.random.seed(0)
    models = {"LSTM": fastlstm.LSTM(2, 2, 1, verbose=False),
              "LSTMLayer": fastlstm.LSTMLayer(2, 2, seed=0),
              "LSTMLayer-2-bi": fastlstm.LSTMLayer(1, 2, num_layers=2, bidirectional=True,
                                                   dtype=np.float64, seed=1)}
    np.random.set_state(np_state)
    if HAVE_SKLEARN:
        models["LSTMRegressor"] = _fitted_regressor()
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, obj in models.items():
            path = os.path.join(tmp, name + ".npz")
            fastlstm.save(obj, path)
            with open(path, "rb") as f:
                files[name] = (f.read(), obj)
    return files


# Fields of a zip's local file header and central directory entry: (offset, width).
_LOCAL_FIELDS = ((4, 2), (6, 2), (8, 2), (10, 2), (12, 2), (14, 4), (18, 4), (22, 4), (26, 2),
                 (28, 2))
_CENTRAL_FIELDS = ((4, 2), (6, 2), (8, 2), (10, 2), (12, 2), (14, 2), (16, 4), (20, 4), (24, 4),
                   (28, 2), (30, 2), (32, 2), (34, 2), (36, 2), (38, 4), (42, 4))


def _zip_fields(blob):
    """(offset, width) of every header field of the archive: the bytes where a flip changes
    the archive's structure (how to read a member) rather than a member's data."""
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        locals_ = [i.header_offset for i in zf.infolist()]
    end = blob.rfind(b"PK\x05\x06")  # end of central directory record
    pos = int.from_bytes(blob[end + 16:end + 20], "little")
    centrals = []
    while blob[pos:pos + 4] == b"PK\x01\x02":
        centrals.append(pos)
        pos += 46 + sum(int.from_bytes(blob[pos + o:pos + o + 2], "little") for o in (28, 30, 32))
    fields = [(h + o, w) for h in locals_ for o, w in _LOCAL_FIELDS]
    fields += [(c + o, w) for c in centrals for o, w in _CENTRAL_FIELDS]
    fields += [(end + o, w) for o, w in ((4, 2), (6, 2), (8, 2), (10, 2), (12, 4), (16, 4),
                                         (20, 2))]
    return fields


def _outputs(obj):
    """A deterministic output of a model, to compare two models by."""
    from fastlstm import LSTM, LSTMLayer
    if isinstance(obj, LSTMLayer):
        x = np.linspace(-1, 1, 3 * 2 * obj.input_size).reshape(3, 2, obj.input_size)
        return obj.forward(x, training=False)[0]
    if isinstance(obj, LSTM):
        return np.array(obj.forward(np.linspace(-1, 1, 3 * obj.input_size)
                                    .reshape(3, obj.input_size))[1])
    return obj.predict(np.linspace(-1, 1, 2 * 3 * obj.lstm_.input_size)
                       .reshape(2, 3, obj.lstm_.input_size))


@st.composite
def corrupted_files(draw):
    files = _valid_files()
    name = draw(st.sampled_from(sorted(files)))
    blob, _ = files[name]
    kind = draw(st.sampled_from(("random", "zip_magic", "truncated", "flip", "field", "field",
                                 "field", "flips", "empty")))
    if kind == "random":
        return name, kind, draw(st.binary(max_size=2048))
    if kind == "zip_magic":
        return name, kind, b"PK\x03\x04" + draw(st.binary(max_size=512))
    if kind == "empty":
        return name, kind, b""
    if kind == "truncated":
        return name, kind, blob[:draw(st.integers(0, len(blob) - 1))]
    out = bytearray(blob)
    if kind == "field":  # a header field set to another value
        offset, width = draw(st.sampled_from(_zip_fields(blob)))
        old = int.from_bytes(blob[offset:offset + width], "little")
        new = draw(st.integers(0, 256**width - 1).filter(lambda v: v != old)
                   | st.sampled_from([v for v in (0, 1, 8, 9, 12, 14, 20, 45, 63, old ^ 1,
                                                  old + 1) if v != old and v < 256**width]))
        out[offset:offset + width] = new.to_bytes(width, "little")
        return name, f"field at {offset}: {old} -> {new}", bytes(out)
    n_flips = draw(st.integers(2, 6)) if kind == "flips" else 1
    for _ in range(n_flips):
        pos = draw(st.integers(0, len(blob) - 1))
        out[pos] = draw(st.integers(0, 255).filter(lambda v, p=pos: v != blob[p]))
    return name, kind, bytes(out)


def _load_bytes(blob):
    """``fastlstm.load`` of a file holding ``blob``: the object, or None for a ValueError (any
    other exception fails the test)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        with open(path, "wb") as f:
            f.write(blob)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return fastlstm.load(path)
            except ValueError:
                return None


@FUZZ
@given(case=corrupted_files())
def test_load_of_corrupted_bytes_raises_only_value_error(case):
    name, kind, blob = case
    note(f"{name}: {kind}")
    _, original = _valid_files()[name]
    loaded = _load_bytes(blob)
    if loaded is None:
        event(f"{kind.split(' at ')[0]}: ValueError")
        return
    # The archive's checksums cover every member: what loads is the saved model.
    event(f"{kind.split(' at ')[0]}: loaded")
    assert type(loaded) is type(original)
    assert np.array_equal(_outputs(loaded), _outputs(original))


def test_load_of_a_missing_file_raises_file_not_found():
    with tempfile.TemporaryDirectory() as tmp:
        with pytest.raises(FileNotFoundError):
            fastlstm.load(os.path.join(tmp, "missing.npz"))
        with pytest.raises(ValueError):
            fastlstm.load(tmp)  # a folder


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 6) | st.floats(allow_nan=False, width=32)
    | st.text(max_size=6) | st.sampled_from(("float32", "float64", "tanh", "relu", "LSTM",
                                             "LSTMLayer", "LSTMRegressor", "adam")),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6)
ARRAY_VALUES = st.sampled_from((
    np.zeros(0), np.zeros((2, 2)), np.zeros((8, 2), np.float32), np.zeros((8, 2)),
    np.zeros(8, np.int64), np.array(1), np.array(1.0), np.array("x"), np.array(True),
    np.zeros(3, np.complex64), np.array([b"ab"]), np.zeros(2, "M8[s]"),
    np.array([1, None], dtype=object), np.zeros(8, np.float16)))


@st.composite
def mutated_contents(draw):
    """A well-formed zip whose fastlstm contents (metadata, configuration, arrays) are
    changed: the paths a flipped byte cannot reach past the checksums."""
    files = _valid_files()
    name = draw(st.sampled_from(sorted(files)))
    blob, _ = files[name]
    with np.load(io.BytesIO(blob)) as f:
        members = {k: f[k] for k in f.files}
    config = json.loads(str(members["__config__"]))
    saved = [v for k, v in members.items() if k.startswith("a/")]
    others = ([a.reshape(-1) for a in saved] + [a.astype(np.float64) for a in saved]
              + [a.astype(np.float32) for a in saved])
    n_mut = draw(st.integers(1, 3))
    log, raw_config = [], False
    for _ in range(n_mut):
        what = draw(st.sampled_from(("config_value", "config_nested", "config_drop", "kind",
                                     "version", "array_drop", "array_replace", "array_add",
                                     "config_raw")))
        if what in ("config_value", "config_drop") and config:
            key = draw(st.sampled_from(sorted(config)))
            if what == "config_drop":
                del config[key]
            else:
                config[key] = draw(JSON_VALUES)
            log.append((what, key))
        elif what == "config_nested":
            dicts = [(k, v) for k, v in config.items() if isinstance(v, dict) and v]
            if dicts:
                key, inner = draw(st.sampled_from(dicts))
                sub = draw(st.sampled_from(sorted(inner)))
                inner[sub] = draw(JSON_VALUES)
                log.append((what, key, sub))
        elif what == "kind":
            members["__kind__"] = np.array(draw(st.sampled_from(
                ("LSTM", "LSTMLayer", "LSTMRegressor", "GRU", "")) | st.text(max_size=4)))
        elif what == "version":
            members["__fastlstm_format__"] = draw(st.sampled_from(
                (np.array(0), np.array(2), np.array(1.0), np.array([1]), np.array("1"),
                 np.array(True), np.array(1, np.uint8), np.array(-1))))
        elif what == "config_raw":
            members["__config__"] = draw(st.sampled_from(
                (np.array("{"), np.array("[]"), np.array("5"), np.array(5), np.array(["{}"]),
                 np.array('{"a": NaN}'), np.array("\udcff"))))
            raw_config = True
            log.append((what, str(members["__config__"])))
        else:
            arrays = sorted(k for k in members if k.startswith("a/"))
            if not arrays and what != "array_add":
                continue
            key = draw(st.sampled_from(arrays)) if what != "array_add" else "a/extra"
            if what == "array_drop":
                del members[key]
            else:
                members[key] = draw(ARRAY_VALUES | st.sampled_from(others))
            log.append((what, key))
    if not raw_config:
        members["__config__"] = np.array(json.dumps(config))
    out = io.BytesIO()
    np.savez(out, **members)
    return name, log, out.getvalue()


@FUZZ
@given(case=mutated_contents())
def test_load_of_mutated_contents_raises_only_value_error(case):
    name, log, blob = case
    note(f"{name}: {log}")
    loaded = _load_bytes(blob)
    if loaded is None:
        event("ValueError")
        return
    event("loaded")
    # whatever loads is usable, or refuses cleanly what its (crafted) configuration breaks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _outputs(loaded)
        except CLEAN:
            event("loaded, then refused to compute")


@FUZZ
@given(cfg=layer_configs(), data=st.data())
def test_save_load_round_trip_computes_the_same(cfg, data):
    kind = data.draw(st.sampled_from(("LSTMLayer", "LSTMLayer", "LSTM")), "kind")
    if kind == "LSTM":
        np_state = np.random.get_state()
        np.random.seed(cfg["seed"])
        obj = fastlstm.LSTM(cfg["input_size"], cfg["hidden_size"], data.draw(st.integers(1, 3)),
                            dtype=cfg["dtype"], verbose=False,
                            learning_rate=data.draw(st.floats(1e-4, 1.0)),
                            clip=data.draw(st.none() | st.floats(0.1, 10.0)))
        np.random.set_state(np_state)
    else:
        obj = fastlstm.LSTMLayer(**cfg)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        fastlstm.save(obj, path)
        back = fastlstm.load(path)
    assert type(back) is type(obj)
    assert repr(back) == repr(obj)
    assert getattr(back, "clip", None) == getattr(obj, "clip", None)
    assert np.array_equal(_outputs(back), _outputs(obj), equal_nan=True)


# ------------------------------------------------------------------------------------------------
# trace
# ------------------------------------------------------------------------------------------------

@FUZZ
@given(cfg=layer_configs(single=True), data=st.data())
def test_trace_hidden_equals_forward(cfg, data):
    layer = fastlstm.LSTMLayer(**cfg)
    T, I, H = data.draw(size(1, 6), "T"), layer.input_size, layer.hidden_size
    B = data.draw(st.none() | size(1, 4), "B")
    if B is None:  # one sequence (T, I)
        x = data.draw(presented(data.draw(real_values((T, I)))), "x")
        tr = fastlstm.trace(layer, x)
        xb = logical(x)[None] if layer.batch_first else logical(x)[:, None]
        y, _ = layer.forward(xb)
        expected = y[0] if layer.batch_first else y[:, 0]
    else:
        shape = (B, T, I) if layer.batch_first else (T, B, I)
        x = data.draw(presented(data.draw(real_values(shape))), "x")
        state = None
        if data.draw(st.booleans(), "with state"):
            state = (data.draw(real_values((1, B, H))), data.draw(real_values((1, B, H))))
        tr = fastlstm.trace(layer, x, state)
        y, _ = layer.forward(x, state)
        expected = y.transpose(1, 0, 2) if layer.batch_first else y  # trace is time-major
    assert tr.hidden.shape == expected.shape
    assert np.array_equal(tr.hidden, expected, equal_nan=True), "trace.hidden != forward's y"


@FUZZ
@given(cfg=layer_configs(), data=st.data())
def test_trace_states_and_gates_match_reference(cfg, data):
    layer = fastlstm.LSTMLayer(**cfg)
    T, B = data.draw(size(1, 5), "T"), data.draw(size(1, 3), "B")
    I, H, D, L = layer.input_size, layer.hidden_size, layer.num_directions, layer.num_layers
    x = data.draw(real_values((B, T, I) if layer.batch_first else (T, B, I), kinds=("normal",)))
    state = None
    if data.draw(st.booleans(), "with state"):
        state = tuple(data.draw(real_values((L * D, B, H), kinds=("normal",))) for _ in "hc")
    tr = fastlstm.trace(layer, x, state)
    _, _, cache = ref_forward(layer, x, *(state or (None, None)))
    gate_names = ("input", "forget", "candidate", "output")
    for (k, d), part in tr.parts.items():
        step = cache["steps"][k * D + d]
        where = f"layer {k} direction {d}"
        for name in ("hidden", "cell", "hidden_prev", "cell_prev"):
            assert_close(f"{where}: {name}", getattr(part, name), step[name], layer.dtype)
        gates = np.split(step["gates"], 4, axis=-1)
        for name, ref_gate in zip(gate_names, gates):
            assert_close(f"{where}: {name}", getattr(part, name), ref_gate, layer.dtype)
        assert_close(f"{where}: inputs", part.inputs, cache["inputs"][k], layer.dtype)
    assert len(tr.parts) == L * D


@FUZZ
@given(data=st.data())
def test_trace_refuses_invalid_input_cleanly(data):
    layer = _tiny_layer(data.draw)
    L, D = layer.num_layers, layer.num_directions
    x = np.ones((3, layer.input_size))
    what = data.draw(st.sampled_from(("x", "layer", "direction", "model", "state")))
    kwargs = {}
    if what == "x":
        bad, reason = data.draw(bad_arrays((3, 2, layer.input_size), ("a", "b", "I"),
                                           free=(0, 1)))
        shape = _shape_of(bad)
        if shape is not None and len(shape) == 2 and shape[-1] == layer.input_size \
                and shape[0] > 0:
            bad = np.ones((2, layer.input_size + 1))  # (T, I) is a valid single sequence
        args = (layer, bad)
    elif what == "model":
        args = (data.draw(st.sampled_from((None, "LSTM", object(), np.ones(3)))), x)
    elif what == "state":
        args = (layer, x)
        kwargs["state"] = data.draw(st.sampled_from((
            np.zeros((2, L * D, layer.hidden_size)), 5, (np.zeros((L * D + 1,
                                                                   layer.hidden_size)),) * 2,
            (np.zeros((L * D, layer.hidden_size)),), (np.zeros(3, complex),) * 2)))
    else:
        args = (layer, x)
        kwargs[what] = data.draw(st.sampled_from((L, -L - 1, 2, 5, -3, 1.0, "0", None, True))
                                 if what == "layer" else st.sampled_from((D, 2, -1, 0.5, "0",
                                                                          None)))
    note(f"{what}: {kwargs}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CLEAN):
            fastlstm.trace(*args, **kwargs)


# --- LSTMLayer with lengths and reset: each sequence alone, segment by segment --------------

@FUZZ_HALF
@given(data=st.data())
def test_layer_lengths_and_reset_equal_each_sequence_alone(data):
    """Any lengths (0 included), any restarts, stacked and bidirectional, any thread split: the
    ragged call's outputs, final states and input gradients equal each sequence run alone over
    its own steps, one segment at a time (the padded kernels), and the weight gradients equal
    the sum of theirs."""
    T = data.draw(st.integers(1, 9), label="T")
    B = data.draw(st.integers(1, 7), label="B")
    I = data.draw(st.integers(1, 5), label="I")
    H = data.draw(st.integers(1, 20), label="H")
    L = data.draw(st.integers(1, 2), label="L")
    bi = data.draw(st.booleans(), label="bidirectional")
    split = data.draw(st.sampled_from([0, 1, 2, 3]), label="split")
    step = data.draw(st.sampled_from([0, 1, 2]), label="step")
    threads = data.draw(st.sampled_from([1, 2]), label="threads")
    seed = data.draw(st.integers(0, 2 ** 16), label="seed")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, T + 1, B)
    reset = rng.random((T, B)) < data.draw(st.sampled_from([0.0, 0.2, 0.5]), label="p_reset")
    layer = fastlstm.LSTMLayer(I, H, L, bidirectional=bi, dtype=np.float64, seed=seed)
    D = layer.num_directions
    x = rng.standard_normal((T, B, I))
    h0, c0 = rng.standard_normal((2, L * D, B, H))
    gy = rng.standard_normal((T, B, D * H))
    ghn, gcn = rng.standard_normal((2, L * D, B, H))
    before = fastlstm.get_num_threads()
    fastlstm.set_num_threads(threads)
    try:
        layer._split, layer._step = split, step
        y, (hn, cn) = layer.forward(x, (h0, c0), lengths=lengths, reset=reset)
        dx, (dh0, dc0) = layer.backward(gy, (ghn, gcn))
        grads = {k: v.copy() for k, v in layer.grads.items()}
        layer._split = layer._step = 0
        total = {k: np.zeros_like(v) for k, v in grads.items()}
        fwd = np.array([k % D == 0 for k in range(L * D)])
        tol = dict(rtol=1e-9, atol=1e-10)
        for b in range(B):
            s, n = slice(b, b + 1), int(lengths[b])
            assert not y[n:, s].any() and not dx[n:, s].any()
            if n == 0:
                np.testing.assert_array_equal(hn[:, s], h0[:, s])
                np.testing.assert_array_equal(dh0[:, s], ghn[:, s])
                continue
            starts = [0] + [t for t in range(1, n) if reset[t, b]]
            seg = list(zip(starts, starts[1:] + [n]))
            sum_dh0 = np.zeros_like(dh0[:, s])
            for i, (t0, t1) in enumerate(seg):
                ends = (fwd if i == len(seg) - 1 else np.zeros(L * D, bool)) | \
                    (~fwd if i == 0 else np.zeros(L * D, bool))
                ys, (hs, cs) = layer.forward(x[t0:t1, s], (h0[:, s], c0[:, s]))
                np.testing.assert_allclose(y[t0:t1, s], ys, **tol)
                np.testing.assert_allclose(hn[ends, s], hs[ends], **tol)
                np.testing.assert_allclose(cn[ends, s], cs[ends], **tol)
                dxs, (dh0s, _) = layer.backward(gy[t0:t1, s], (ghn[:, s] * ends[:, None, None],
                                                               gcn[:, s] * ends[:, None, None]))
                np.testing.assert_allclose(dx[t0:t1, s], dxs, **tol)
                sum_dh0 += dh0s
                for k in total:
                    total[k] += layer.grads[k]
            np.testing.assert_allclose(dh0[:, s], sum_dh0, **tol)
        for k in total:
            np.testing.assert_allclose(grads[k], total[k], rtol=1e-8, atol=1e-9, err_msg=k)
    finally:
        fastlstm.set_num_threads(before)
        layer._split = layer._step = 0
