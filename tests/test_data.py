"""fastlstm.data: windows against hand-written cases, an explicit slicing loop and the notebooks'
helpers; the split and the recursive forecast against values computed by hand."""

import numpy as np
import pytest

from fastlstm import data, reference
from fastlstm.data import forecast_recursive, make_windows, temporal_split


def _windows_by_loop(series2d, lookback, horizon, cols, stride):
    """The definition, one slice at a time: X (n, lookback, F) and y (n, horizon, len(cols))."""
    X, y = [], []
    s = 0
    while s + lookback + horizon <= len(series2d):
        X.append(series2d[s:s + lookback])
        y.append(series2d[s + lookback:s + lookback + horizon][:, cols])
        s += stride
    return np.array(X), np.array(y)


# ------------------------------------------------------------------------------------------------
# make_windows
# ------------------------------------------------------------------------------------------------

def test_public_names():
    assert sorted(data.__all__) == ["forecast_recursive", "make_windows", "temporal_split"]


def test_1d_alignment_by_hand():
    X, y = make_windows([0, 1, 2, 3, 4, 5, 6], lookback=3, horizon=2)
    np.testing.assert_array_equal(X[:, :, 0], [[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    np.testing.assert_array_equal(y, [[3, 4], [4, 5], [5, 6]])
    assert X.shape == (3, 3, 1)


def test_2d_stride_and_negative_target_by_hand():
    series = np.array([[0, 10], [1, 11], [2, 12], [3, 13], [4, 14], [5, 15], [6, 16]], float)
    X, y = make_windows(series, lookback=2, target=-1, stride=2)
    # starts 0, 2, 4: targets are rows 2, 4, 6 of column 1
    np.testing.assert_array_equal(X, [[[0, 10], [1, 11]], [[2, 12], [3, 13]], [[4, 14], [5, 15]]])
    np.testing.assert_array_equal(y, [12, 14, 16])


@pytest.mark.parametrize("shape, lookback, horizon, target, stride, y_shape", [
    ((20,), 4, 1, None, 1, lambda n: (n,)),
    ((20,), 4, 3, None, 1, lambda n: (n, 3)),
    ((20,), 4, 1, 0, 3, lambda n: (n,)),
    ((20,), 4, 2, [0], 1, lambda n: (n, 2, 1)),
    ((20, 1), 5, 1, None, 2, lambda n: (n,)),
    ((20, 3), 4, 1, None, 1, lambda n: (n, 3)),
    ((20, 3), 4, 2, None, 3, lambda n: (n, 2, 3)),
    ((20, 3), 4, 1, 1, 1, lambda n: (n,)),
    ((20, 3), 4, 3, -2, 2, lambda n: (n, 3)),
    ((20, 3), 4, 1, [2, 0], 1, lambda n: (n, 2)),
    ((20, 3), 3, 4, (0, -1), 5, lambda n: (n, 4, 2)),
    ((20, 3), 2, 1, [1], 1, lambda n: (n, 1)),
])
def test_matches_slicing_loop(rng, shape, lookback, horizon, target, stride, y_shape):
    series = rng.normal(size=shape)
    s2 = series.reshape(shape[0], -1)
    if target is None:
        cols = list(range(s2.shape[1]))
    else:
        cols = [target] if isinstance(target, int) else list(target)
    X_ref, y_ref = _windows_by_loop(s2, lookback, horizon, cols, stride)
    n = len(X_ref)
    assert n == (shape[0] - lookback - horizon) // stride + 1
    X, y = make_windows(series, lookback, horizon=horizon, target=target, stride=stride)
    np.testing.assert_array_equal(X, X_ref)
    assert y.shape == y_shape(n)
    np.testing.assert_array_equal(y, y_ref.reshape(y_shape(n)))


@pytest.mark.parametrize("lookback, horizon, stride", [(3, 1, 1), (3, 2, 1), (2, 2, 4), (1, 1, 9)])
def test_exactly_one_window_edge(lookback, horizon, stride):
    n = lookback + horizon
    for length in range(n, n + stride):  # every length up to the next window's start
        X, y = make_windows(np.arange(length), lookback, horizon, stride=stride)
        assert X.shape == (1, lookback, 1)
        np.testing.assert_array_equal(X[0, :, 0], np.arange(lookback))
        np.testing.assert_array_equal(y, np.arange(lookback, n).reshape(y.shape))
    X, _ = make_windows(np.arange(n + stride), lookback, horizon, stride=stride)
    assert len(X) == 2
    with pytest.raises(ValueError, match="lookback.*horizon"):
        make_windows(np.arange(n - 1), lookback, horizon, stride=stride)


@pytest.mark.parametrize("series, dtype", [
    (np.arange(6, dtype=np.float32), np.float32),
    (np.arange(6, dtype=np.float64), np.float64),
    (np.arange(6, dtype=np.int32), np.float64),
    (list(range(6)), np.float64),
    ([True, False, True, True, False, True], np.float64),
    (np.arange(12, dtype=np.float32).reshape(6, 2), np.float32),
])
def test_dtypes(series, dtype):
    X, y = make_windows(series, 2, horizon=2)
    assert X.dtype == dtype and y.dtype == dtype


@pytest.mark.parametrize("n, lookback, horizon, stride, target", [
    (10, 3, 2, 2, None), (10, 3, 1, 1, [0]), (4, 3, 1, 1, None), (4, 3, 1, 1, 1), (5, 3, 2, 1, 0)])
def test_x_and_y_are_fresh_writable_contiguous_copies(n, lookback, horizon, stride, target):
    # n = lookback + horizon (one window) is the case where a view would look contiguous
    series = np.arange(2.0 * n).reshape(n, 2)
    before = series.copy()
    X, y = make_windows(series, lookback, horizon=horizon, stride=stride, target=target)
    for arr in (X, y):
        assert arr.flags.c_contiguous and arr.flags.writeable and arr.flags.owndata
        assert not np.shares_memory(arr, series)
    X[...] = -1
    y[...] = -1
    np.testing.assert_array_equal(series, before)
    X1, _ = make_windows(np.arange(4.0), 3)
    X1[...] = -1


def test_overlapping_windows_do_not_alias():
    series = np.arange(20.0).reshape(10, 2)
    # overlapping windows must not alias one another either
    X2, _ = make_windows(series, 3)
    X2[0, 1] = 99
    assert X2[1, 0, 0] == 2.0


def test_nan_propagates():
    X, y = make_windows([0.0, np.nan, 2.0, 3.0], 2)
    assert np.isnan(X[0, 1, 0]) and np.isnan(X[1, 0, 0]) and y.tolist() == [2.0, 3.0]


def test_matches_notebook_002_create_sequences(rng):
    series = rng.normal(size=30)
    X_ref, y_ref = reference.create_sequences(series, 5)
    X, y = make_windows(series, 5)
    np.testing.assert_array_equal(X[:, :, 0], X_ref)  # the notebook has no feature axis
    np.testing.assert_array_equal(y, y_ref)
    series2 = rng.normal(size=(30, 3))
    X_ref, y_ref = reference.create_sequences(series2, 4)
    X, y = make_windows(series2, 4)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)


def test_matches_notebook_001_prepare_sequences(rng):
    # Notebook 001 targets the whole window shifted by one (data[i+1:i+L+1]); its last entry is
    # our horizon-1 target and the rest is the input window from its second step on.
    series = rng.normal(size=25)
    X_ref, y_ref = map(np.array, reference.prepare_sequences(series, 6))
    X, y = make_windows(series, 6)
    np.testing.assert_array_equal(X[:, :, 0], X_ref)
    np.testing.assert_array_equal(y, y_ref[:, -1])
    np.testing.assert_array_equal(X[:, 1:, 0], y_ref[:, :-1])


SERIES2 = np.arange(20.0).reshape(10, 2)


@pytest.mark.parametrize("kwargs, exc, patterns", [
    (dict(series=np.ones(10, complex)), TypeError, ["series", "complex"]),
    (dict(series=np.array(["a"] * 10)), TypeError, ["series", "numeric"]),
    (dict(series=np.array([None] * 10)), TypeError, ["series", "object"]),
    (dict(series=[[1, 2], [3]]), ValueError, ["series"]),
    (dict(series=np.ones((10, 2, 2))), ValueError, [r"series", r"\(n, F\)", r"\(10, 2, 2\)"]),
    (dict(series=3.0), ValueError, ["series", r"\(\)"]),
    (dict(series=np.ones((10, 0))), ValueError, ["series", "no columns", r"\(10, 0\)"]),
    (dict(series=np.ones(4), lookback=3, horizon=2), ValueError, ["lookback=3", "horizon=2",
                                                                  "length 4"]),
    (dict(series=[], lookback=1), ValueError, ["lookback=1", "horizon=1", "length 0"]),
    (dict(lookback=0), ValueError, ["lookback", ">= 1", "got 0"]),
    (dict(lookback=-2), ValueError, ["lookback", "got -2"]),
    (dict(lookback=2.0), TypeError, ["lookback", "integer", "2.0"]),
    (dict(lookback=True), TypeError, ["lookback", "True"]),
    (dict(lookback="3"), TypeError, ["lookback", "'3'"]),
    (dict(horizon=0), ValueError, ["horizon", "got 0"]),
    (dict(horizon=1.5), TypeError, ["horizon", "1.5"]),
    (dict(horizon=np.True_), TypeError, ["horizon", "True"]),
    (dict(stride=0), ValueError, ["stride", "got 0"]),
    (dict(stride=None), TypeError, ["stride", "None"]),
    (dict(target=2), ValueError, ["target", "2", "2 column"]),
    (dict(target=-3), ValueError, ["target", "-3"]),
    (dict(series=np.ones(10), target=1), ValueError, ["target", "1 column"]),
    (dict(target=[0, 5]), ValueError, ["target", "5"]),
    (dict(target=[1, 1]), ValueError, ["target", "twice"]),
    (dict(target=[1, -1]), ValueError, ["target", "twice"]),
    (dict(target=[]), ValueError, ["target", "empty"]),
    (dict(target=1.0), TypeError, ["target", "1.0"]),
    (dict(target="a"), TypeError, ["target", "'a'"]),
    (dict(target=True), TypeError, ["target", "True"]),
    (dict(target=[0, 0.5]), TypeError, ["target", "0.5"]),
])
def test_make_windows_bad_inputs(kwargs, exc, patterns):
    args = dict(series=SERIES2, lookback=3)
    args.update(kwargs)
    with pytest.raises(exc) as info:
        make_windows(**args)
    for p in patterns:
        assert info.match(p)


# ------------------------------------------------------------------------------------------------
# temporal_split
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("test_size, n_test", [(0.2, 2), (0.3, 3), (0.25, 3), (0.01, 1),
                                               (4, 4), (1, 1), (9, 9),
                                               (np.int64(2), 2), (np.float64(0.5), 5)])
def test_split_sizes(test_size, n_test):
    train, test = temporal_split(np.arange(10), test_size=test_size)
    np.testing.assert_array_equal(train, np.arange(10 - n_test))
    np.testing.assert_array_equal(test, np.arange(10 - n_test, 10))


def test_split_several_arrays_in_order_without_copies():
    X = np.arange(30.0).reshape(10, 3)
    y = np.arange(10) * 2
    labels = list("abcdefghij")
    parts = temporal_split(X, y, labels, test_size=3)
    assert len(parts) == 6
    X_tr, X_te, y_tr, y_te, l_tr, l_te = parts
    np.testing.assert_array_equal(X_tr, X[:7])
    np.testing.assert_array_equal(X_te, X[7:])
    np.testing.assert_array_equal(y_tr, [0, 2, 4, 6, 8, 10, 12])
    np.testing.assert_array_equal(y_te, [14, 16, 18])
    assert l_tr == list("abcdefg") and l_te == ["h", "i", "j"]
    assert np.shares_memory(X_tr, X) and np.shares_memory(y_te, y)


def test_split_default_and_positional_iloc():
    class Frame:  # pandas-like: label indexing differs, .iloc slices by position
        def __init__(self, rows):
            self.iloc = rows

        def __len__(self):
            return len(self.iloc)

        def __getitem__(self, key):
            raise AssertionError("must slice through .iloc")

    tr, te = temporal_split(Frame(list(range(10))))
    assert tr == list(range(8)) and te == [8, 9]


@pytest.mark.parametrize("arrays, test_size, exc, patterns", [
    ((np.arange(10), np.arange(9)), 0.2, ValueError, ["same length", r"\[10, 9\]"]),
    ((np.arange(10), [1, 2], np.arange(10)), 0.2, ValueError, [r"\[10, 2, 10\]"]),
    ((), 0.2, ValueError, ["at least one"]),
    ((5,), 0.2, TypeError, [r"arrays\[0\]", "int"]),
    ((np.arange(10), np.float64(3.0)), 0.2, TypeError, [r"arrays\[1\]"]),
    ((np.arange(10),), 0.0, ValueError, ["test_size", r"\(0, 1\)", "0.0"]),
    ((np.arange(10),), 1.0, ValueError, ["test_size", "1.0"]),
    ((np.arange(10),), -0.1, ValueError, ["test_size", "-0.1"]),
    ((np.arange(10),), float("nan"), ValueError, ["test_size", "nan"]),
    ((np.arange(10),), 0, ValueError, ["test_size=0", "non-empty"]),
    ((np.arange(10),), 10, ValueError, ["test_size=10", "0 train"]),
    ((np.arange(10),), -1, ValueError, ["test_size=-1"]),
    ((np.arange(10),), 0.95, ValueError, ["test_size=0.95", "10 test and 0 train"]),
    ((np.arange(1),), 0.5, ValueError, ["1 samples", "non-empty"]),
    (([],), 0.5, ValueError, ["0 samples"]),
    ((np.arange(10),), True, TypeError, ["test_size", "True"]),
    ((np.arange(10),), "0.2", TypeError, ["test_size", "'0.2'"]),
    ((np.arange(10),), None, TypeError, ["test_size", "None"]),
])
def test_split_bad_inputs(arrays, test_size, exc, patterns):
    with pytest.raises(exc) as info:
        temporal_split(*arrays, test_size=test_size)
    for p in patterns:
        assert info.match(p)


# ------------------------------------------------------------------------------------------------
# forecast_recursive
# ------------------------------------------------------------------------------------------------

class LastPlusOne:
    """Predicts the window's last row + ``inc``; records every input it sees."""

    def __init__(self, inc=1.0, out_shape=None):
        self.inc, self.out_shape, self.seen = np.asarray(inc), out_shape, []

    def predict(self, X):
        self.seen.append(X.copy())
        pred = X[:, -1, :] + self.inc  # (1, F)
        return pred.reshape(self.out_shape) if self.out_shape else pred


class WindowMean:
    def predict(self, X):
        return np.array([X[0, :, 0].mean()])  # (1,)


def test_recursive_univariate_last_plus_one():
    model = LastPlusOne(out_shape=(1,))
    out = forecast_recursive(model, [1.0, 2.0, 3.0], 4)
    np.testing.assert_array_equal(out, [4, 5, 6, 7])
    windows = [w.tolist() for w in model.seen]
    assert windows == [[[[1], [2], [3]]], [[[2], [3], [4]]], [[[3], [4], [5]]], [[[4], [5], [6]]]]


def test_recursive_window_mean_by_hand():
    # [0, 3, 6] -> 3; [3, 6, 3] -> 4; [6, 3, 4] -> 13/3; [3, 4, 13/3] -> 34/9
    out = forecast_recursive(WindowMean(), np.array([0.0, 3.0, 6.0]), 4)
    np.testing.assert_allclose(out, [3, 4, 13 / 3, 34 / 9], rtol=1e-15)
    assert out.shape == (4,)


@pytest.mark.parametrize("history, out_shape", [([[1.0], [2.0]], (1, 1)), ([1.0, 2.0], (1, 1)),
                                                ([[1.0], [2.0]], (1,))])
def test_recursive_single_feature_forms_give_1d(history, out_shape):
    out = forecast_recursive(LastPlusOne(out_shape=out_shape), history, 3)
    assert out.shape == (3,)
    np.testing.assert_array_equal(out, [3, 4, 5])


def test_recursive_multivariate():
    history = np.array([[0.0, 0.0], [1.0, 10.0]], dtype=np.float32)
    before = history.copy()
    model = LastPlusOne(inc=[1.0, 10.0])
    out = forecast_recursive(model, history, 3)
    np.testing.assert_array_equal(out, [[2, 20], [3, 30], [4, 40]])
    assert out.shape == (3, 2) and out.dtype == np.float32
    assert all(w.shape == (1, 2, 2) and w.dtype == np.float32 for w in model.seen)
    np.testing.assert_array_equal(model.seen[2][0], [[2, 20], [3, 30]])
    np.testing.assert_array_equal(history, before)


def test_recursive_nan_history_propagates():
    out = forecast_recursive(WindowMean(), [1.0, np.nan], 2)
    assert np.isnan(out).all()


def test_recursive_one_value_for_several_features_points_to_direct():
    with pytest.raises(ValueError) as info:
        forecast_recursive(WindowMean(), np.ones((3, 2)), 2)
    for p in ["one value", "2 features", "every feature", r"horizon=k"]:
        assert info.match(p)


class Returns:
    def __init__(self, value):
        self.value = value

    def predict(self, X):
        return self.value


@pytest.mark.parametrize("model, history, steps, exc, patterns", [
    (Returns(np.ones((1, 3))), np.ones((4, 2)), 1, ValueError,
     [r"\(1, 4, 2\)", r"\(1, 2\)", r"got \(1, 3\)"]),
    (Returns(np.ones(2)), np.ones(4), 1, ValueError, [r"\(1,\)", r"got \(2,\)"]),
    (Returns(1.0), np.ones(4), 1, ValueError, ["model.predict", r"got \(\)"]),
    (Returns(np.ones((1, 1, 1))), np.ones(4), 1, ValueError, [r"got \(1, 1, 1\)"]),
    (Returns(np.array(["x"])), np.ones(4), 1, TypeError, [r"model.predict\(X\)"]),
    (Returns(np.ones((1, 1))), np.ones((4, 3)), 1, ValueError, ["one value", "every feature"]),
    (object(), np.ones(4), 1, TypeError, ["model", "predict", "object"]),
    (WindowMean(), np.ones(4), 0, ValueError, ["steps", "got 0"]),
    (WindowMean(), np.ones(4), 2.0, TypeError, ["steps", "2.0"]),
    (WindowMean(), np.ones(4), True, TypeError, ["steps", "True"]),
    (WindowMean(), [], 1, ValueError, ["history", "non-empty", r"\(0,\)"]),
    (WindowMean(), np.ones((3, 0)), 1, ValueError, ["history", r"\(3, 0\)"]),
    (WindowMean(), np.ones((2, 2, 2)), 1, ValueError, ["history", r"\(T, F\)", r"\(2, 2, 2\)"]),
    (WindowMean(), 1.0, 1, ValueError, ["history", r"\(\)"]),
    (WindowMean(), [1.0, np.inf], 1, ValueError, ["history", "finite", "infinite"]),
    (WindowMean(), np.ones(3, complex), 1, TypeError, ["history", "complex"]),
    (WindowMean(), ["a", "b"], 1, TypeError, ["history", "numeric"]),
])
def test_recursive_bad_inputs(model, history, steps, exc, patterns):
    with pytest.raises(exc) as info:
        forecast_recursive(model, history, steps)
    for p in patterns:
        assert info.match(p)
