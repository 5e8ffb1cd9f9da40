"""Input checks shared by every public entry point.

Everything a user passes goes through here before any C call: it is converted to a C-contiguous
float32/float64 array (lists, bools and ints are converted; views, negative strides and Fortran
order are copied once), or refused with a TypeError/ValueError that names the argument, what was
expected and what was given.
"""

from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def resolve_dtype(dtype, name="dtype"):
    """np.float32 / np.float64 (or their names) -> np.dtype; anything else is a TypeError."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError, SyntaxError) as exc:  # np.dtype(",") raises SyntaxError
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def dtype_name(dtype):
    """"float32" or "float64" for one of FLOAT_DTYPES: what the kernels' size functions take
    (np.dtype.name is built in Python, microseconds a call on a slow machine)."""
    return "float32" if dtype.itemsize == 4 else "float64"


def _describe(value):
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"array of shape {tuple(shape)} and dtype {dtype}"
    return type(value).__name__


def to_array(value, name, dtype=None):
    """Convert ``value`` to an ndarray of a real float dtype, without silent narrowing.

    dtype None keeps float32/float64 input as it is and turns bools, ints and lists of numbers
    into float64; a given dtype converts real input to it (float64 -> float32 only when asked).
    Complex, object, string and other non-numeric input is a TypeError.
    """
    if (type(value) is np.ndarray and value.dtype in FLOAT_DTYPES
            and (dtype is None or value.dtype == dtype) and value.flags.c_contiguous
            and value.flags.aligned):
        return value  # what np.require below returns for it, without its cost
    arr = _read_array(value, name)
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must be real numbers, got complex ({_describe(arr)})")
    if kind not in "biuf":
        raise TypeError(f"{name} must be numeric (float, int or bool), got {_describe(arr)}")
    if kind == "f" and arr.dtype.itemsize > 8:
        raise TypeError(f"{name} has dtype {arr.dtype}; fastlstm computes in float32 or float64 "
                        "and will not narrow it silently: convert it first")
    if dtype is None:
        dtype = arr.dtype if arr.dtype in FLOAT_DTYPES else np.dtype(np.float64)
        if kind == "f" and arr.dtype.itemsize < 4:
            dtype = np.dtype(np.float32)
    # aligned as well as contiguous: the kernels load whole elements (unaligned views copied)
    return np.require(arr, dtype=dtype, requirements=["C", "A"])


def shape_str(shape):
    return "(" + ", ".join(str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


def check_shape(arr, name, expected):
    """``expected`` is a tuple of ints or None (any size). Raises ValueError naming both shapes."""
    ok = arr.ndim == len(expected) and all(
        e is None or e == s for e, s in zip(expected, arr.shape))
    if not ok:
        exp = shape_str(["*" if e is None else e for e in expected])
        raise ValueError(f"{name}: expected shape {exp}, got {shape_str(arr.shape)}")
    return arr


def check_positive_int(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_real(value, name, minimum=None, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def as_sequence(value, name, features, dtype, min_len=1):
    """One sequence of ``T`` steps of ``features`` values -> a C-contiguous ``(T, features)`` array.

    Accepts what the seed class accepts: a list of scalars (features == 1), of ``(features,)``
    vectors or of ``(features, 1)`` columns, or an array ``(T,)``, ``(T, features)`` or
    ``(T, features, 1)``.
    """
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of numbers, got {type(value).__name__}")
    try:
        length = len(value)
    except TypeError:
        raise TypeError(f"{name} must be a sequence (list or array) of time steps, "
                        f"got {type(value).__name__}") from None
    if length < min_len:
        raise ValueError(f"{name} is empty: expected at least {min_len} time step(s), got 0")
    arr = to_array(value, name, dtype)
    if arr.ndim == 1 and features == 1:
        arr = arr.reshape(-1, 1)
    elif arr.ndim >= 3 and int(np.prod(arr.shape[1:])) == features:
        # each step as an (I, 1) column or a (1, I) row: the seed reshapes steps to (-1, 1)
        arr = arr.reshape(arr.shape[0], features)
    if arr.ndim != 2 or arr.shape[1] != features:
        raise ValueError(f"{name}: expected {length} time steps of {features} value(s) each, "
                         f"shape ({length}, {features}), got an array of shape "
                         f"{shape_str(arr.shape)}")
    return np.require(arr, requirements=["C", "A"])


def _read_array(value, name):
    """np.asarray, with ragged lists and the like a ValueError naming the argument."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} could not be read as an array: {exc}") from exc


def check_lengths(value, steps, batch):
    """``lengths`` of a batch: (batch,) integers in [0, steps], as int64."""
    arr = _read_array(value, "lengths")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"lengths must be integers, got {_describe(arr)}")
    if arr.shape != (batch,):
        raise ValueError(f"lengths: expected shape ({batch},) (one per sequence), got "
                         f"{shape_str(arr.shape)}")
    if batch and (arr.min() < 0 or arr.max() > steps):
        raise ValueError(f"lengths: expected values in [0, {steps}] (the steps of x), got "
                         f"{arr.min()} .. {arr.max()}")
    return arr.astype(np.int64)


def check_mask(value, name, shape, layout):
    """A boolean mask of the given shape (booleans, or integers 0 and 1), as bool."""
    arr = _read_array(value, name)
    if arr.dtype.kind not in "biu":
        raise TypeError(f"{name} must be booleans, got {_describe(arr)}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {shape_str(shape)} ({layout}), got "
                         f"{shape_str(arr.shape)}")
    if arr.dtype.kind != "b" and arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name}: expected booleans (or 0 and 1)")
    return arr.astype(bool)
