"""Data tools for LSTM time-series work: sliding windows, a temporal split, recursive forecasts.

NumPy only. pandas objects are accepted wherever an array is (they go through ``np.asarray``,
or are sliced with ``.iloc`` by :func:`temporal_split`).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._validation import check_positive_int, shape_str, to_array

__all__ = ["make_windows", "temporal_split", "forecast_recursive"]


def _shape(value, arr):
    # to_array returns at least 1-D arrays, so a scalar has to be recognised on the input
    scalar = isinstance(value, numbers.Number) or getattr(value, "ndim", None) == 0
    return () if scalar else arr.shape


def _target_columns(target, n_features):
    """-> (column indices, whether y drops its target axis)."""
    if target is None:
        return list(range(n_features)), n_features == 1
    if isinstance(target, (numbers.Integral, list, tuple)) and not isinstance(target, bool):
        single = isinstance(target, numbers.Integral)
        cols = [target] if single else list(target)
    else:
        raise TypeError(f"target must be None, an int or a list/tuple of ints, "
                        f"got {type(target).__name__} {target!r}")
    if not cols:
        raise ValueError("target is an empty list: expected at least one column index")
    out = []
    for c in cols:
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, numbers.Integral):
            raise TypeError(f"target must hold ints, got {type(c).__name__} {c!r}")
        if not -n_features <= c < n_features:
            raise ValueError(f"target column {c} is out of range for a series with {n_features} "
                             f"column(s): expected {-n_features} <= target < {n_features}")
        out.append(int(c) % n_features)
    if len(set(out)) != len(out):
        raise ValueError(f"target lists a column twice: {target!r} (columns {out})")
    return out, single


def make_windows(series, lookback, horizon=1, target=None, stride=1):
    """Cut a series into input windows and the values that follow each window.

    Window ``i`` starts at row ``s = i * stride``; its inputs are rows ``s .. s + lookback - 1``
    (all columns) and its targets rows ``s + lookback .. s + lookback + horizon - 1`` of the
    target column(s). For ``lookback=3, horizon=2, stride=1`` on 7 rows::

        row:        0   1   2   3   4   5   6
        window 0:  [X   X   X]  y   y
        window 1:      [X   X   X]  y   y
        window 2:          [X   X   X]  y   y

    Windows are made while their targets fit in the series:
    ``n_windows = (n - lookback - horizon) // stride + 1``.

    Parameters
    ----------
    series : array_like, shape (n,) or (n, F)
        Real numbers (bools and ints become float64; float32 stays float32). NaNs propagate.
    lookback : int
        Rows per input window (>= 1).
    horizon : int, default 1
        Rows predicted after each window (>= 1).
    target : None, int or list/tuple of int, default None
        Target column(s); None means every column. Negative indices count from the end.
    stride : int, default 1
        Rows between the starts of consecutive windows (>= 1).

    Returns
    -------
    X : ndarray, shape (n_windows, lookback, F)
        A fresh C-contiguous copy (F = 1 for a 1-D series), in the series' dtype.
    y : ndarray
        Same dtype, shaped by the number of target columns and the horizon:

        ==============================================  ===============  ===========================
        target columns                                  horizon == 1     horizon > 1
        ==============================================  ===============  ===========================
        one (int target; None on a 1-column series)     (n_windows,)     (n_windows, horizon)
        list/tuple (even of one); None with F > 1       (n_windows, k)   (n_windows, horizon, k)
        ==============================================  ===============  ===========================

        where ``k`` is the number of target columns.

    Notes
    -----
    On 1-D data, ``make_windows(data, L)`` gives the windows and targets of notebook 002's
    ``create_sequences(data, L)`` (with X's trailing axis of size 1).
    """
    lookback = check_positive_int(lookback, "lookback")
    horizon = check_positive_int(horizon, "horizon")
    stride = check_positive_int(stride, "stride")
    arr = to_array(series, "series")
    if len(_shape(series, arr)) not in (1, 2):
        raise ValueError(f"series: expected shape (n,) or (n, F), "
                         f"got {shape_str(_shape(series, arr))}")
    data = arr.reshape(-1, 1) if arr.ndim == 1 else arr
    n, n_features = data.shape
    if n_features == 0:
        raise ValueError(f"series has no columns: expected shape (n, F) with F >= 1, "
                         f"got {shape_str(arr.shape)}")
    cols, single = _target_columns(target, n_features)
    n_windows = (n - lookback - horizon) // stride + 1
    if n_windows < 1:
        raise ValueError(f"series has {n} rows but one window needs lookback + horizon = "
                         f"{lookback} + {horizon} = {lookback + horizon} (lookback={lookback}, "
                         f"horizon={horizon}, series length {n})")
    view = np.lib.stride_tricks.sliding_window_view
    # sliding windows put the window axis last: (n_windows, F, lookback) -> (.., lookback, F)
    X = view(data, lookback, axis=0)[::stride][:n_windows].transpose(0, 2, 1)
    y = view(data[lookback:], horizon, axis=0)[::stride][:n_windows, cols].transpose(0, 2, 1)
    if single:
        y = y[:, :, 0]
    if horizon == 1:
        y = y[:, 0]
    # np.array always copies; ascontiguousarray would return a one-window view as it is
    return np.array(X, order="C"), np.array(y, order="C")


def _n_test(test_size, n):
    if isinstance(test_size, (bool, np.bool_)) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"test_size must be a fraction in (0, 1) or an int count, "
                        f"got {type(test_size).__name__} {test_size!r}")
    if isinstance(test_size, numbers.Integral):
        return int(test_size)
    if not 0 < test_size < 1:
        raise ValueError(f"test_size as a fraction must be in (0, 1), got {test_size!r}")
    # round() drops float noise so that 10 * 0.3 = 3.0000000000000004 gives 3, not 4
    return math.ceil(round(n * float(test_size), 9))


def temporal_split(*arrays, test_size=0.2):
    """Split arrays into an earlier train part and a later test part, never shuffling.

    Parameters
    ----------
    *arrays : sequences of the same length n
        NumPy arrays, lists, pandas objects: anything ``len()`` and slices work on (pandas is
        sliced by position through ``.iloc``). The parts are slices, views for NumPy arrays.
    test_size : float in (0, 1) or int, default 0.2
        The test part is the last ``ceil(n * test_size)`` samples for a fraction, or the last
        ``test_size`` samples for an int. Both parts must be non-empty.

    Returns
    -------
    list
        ``[a_train, a_test, b_train, b_test, ...]``, as scikit-learn's ``train_test_split``.
    """
    if not arrays:
        raise ValueError("temporal_split needs at least one array, got none")
    lengths = []
    for i, a in enumerate(arrays):
        try:
            lengths.append(len(a))
        except TypeError:
            raise TypeError(f"arrays[{i}] must be a sequence with a length, got "
                            f"{type(a).__name__}") from None
    if len(set(lengths)) != 1:
        raise ValueError(f"all arrays must have the same length, got lengths {lengths}")
    n = lengths[0]
    n_test = _n_test(test_size, n)
    if not 0 < n_test < n:
        raise ValueError(f"test_size={test_size!r} on {n} samples gives {n_test} test and "
                         f"{n - n_test} train samples: both parts must be non-empty")
    out = []
    for a in arrays:
        rows = getattr(a, "iloc", a)  # pandas: slice by position, whatever the index labels
        out += [rows[:n - n_test], rows[n - n_test:]]
    return out


def forecast_recursive(model, history, steps):
    """Forecast ``steps`` values by feeding each prediction back in (notebook 001's extension).

    Each step predicts from the current window, appends the prediction as a new last row and
    drops the first row.

    Parameters
    ----------
    model : object with ``predict(X)``
        ``X`` has shape (1, T, F); the output has shape (1,) (one value, for F = 1) or (1, F)
        (one value per feature).
    history : array_like, shape (T,) or (T, F)
        The last window; real numbers, finite or NaN. Not modified.
    steps : int
        Number of steps to forecast (>= 1).

    Returns
    -------
    ndarray, shape (steps,) for F = 1, (steps, F) otherwise
        In the dtype of ``history``.

    Notes
    -----
    A model predicting one value from several features cannot be fed back (the other features
    of the next row are unknown): train a direct multi-output model instead, on
    ``make_windows(series, lookback, horizon=k)``, which predicts k steps at once.
    """
    if not callable(getattr(model, "predict", None)):
        raise TypeError(f"model must have a predict(X) method, got {type(model).__name__}")
    steps = check_positive_int(steps, "steps")
    hist = to_array(history, "history")
    if len(_shape(history, hist)) not in (1, 2) or hist.size == 0:
        raise ValueError(f"history: expected a non-empty window of shape (T,) or (T, F), "
                         f"got {shape_str(_shape(history, hist))}")
    window = hist.reshape(len(hist), -1)
    n_features = window.shape[1]
    if np.isinf(window).any():
        raise ValueError("history must be finite numbers (NaN allowed), got an infinite value")
    out = np.empty((steps, n_features), window.dtype)
    for k in range(steps):
        raw = model.predict(window[None].copy())
        pred = to_array(raw, "model.predict(X)")
        pred = pred.reshape(_shape(raw, pred))
        if pred.shape in ((1,), (1, 1)) and n_features > 1:
            raise ValueError(
                f"model.predict returned one value (shape {shape_str(pred.shape)}) but history "
                f"has {n_features} features: recursive forecasting needs a prediction of every "
                f"feature, shape (1, {n_features}), or a univariate model. For a single target, "
                f"forecast directly: make_windows(..., horizon=k) and a model with k outputs.")
        if pred.shape not in ((1,), (1, n_features)):
            raise ValueError(f"model.predict(X) with X of shape (1, {len(window)}, {n_features}) "
                             f"must return shape (1,) or (1, {n_features}), got "
                             f"{shape_str(pred.shape)}")
        out[k] = pred.reshape(n_features)
        window = np.concatenate([window[1:], out[k:k + 1]])
    return out[:, 0] if n_features == 1 else out
