"""Shared helpers for the fastlstm tests.

The tests run against the *installed* package (``pip install .``), never the source tree: nothing
here touches ``sys.path``. The report header says which fastlstm was imported.

Tolerances are keyed by the dtype of the computation under test (see ``TOLERANCES``); every
comparison goes through :func:`assert_close`, whose failure message names the tensor, the
tolerance and the worst entry.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import fastlstm
from fastlstm import _core

#: The seed model's parameters, in the seed's order of appearance.
PARAM_NAMES = ("Wf", "Wi", "Wc", "Wo", "Wy", "bf", "bi", "bc", "bo", "by")

#: The gate/state lists the seed class keeps after forward().
STATE_NAMES = ("f_gates", "i_gates", "c_tildes", "o_gates", "c_states", "h_states")

#: (rtol, atol) per dtype. For float64 the atol is not absolute: it is rtol times the largest
#: magnitude among the expected values, so entries near 0 (e.g. a gradient that nearly cancels)
#: are judged on the scale of the tensor they belong to.
TOLERANCES = {
    np.dtype(np.float64): (1e-12, None),
    np.dtype(np.float32): (1e-4, 1e-5),
}


def pytest_report_header(config):
    return f"fastlstm {fastlstm.__version__} imported from {fastlstm.__file__}"


def tolerance(dtype, expected=None):
    """(rtol, atol) for a computation in ``dtype`` checked against ``expected``."""
    rtol, atol = TOLERANCES[np.dtype(dtype)]
    if atol is None:
        finite = np.abs(np.asarray(expected, dtype=np.float64))
        finite = finite[np.isfinite(finite)]
        scale = float(finite.max()) if finite.size else 0.0
        atol = rtol * scale
    return rtol, atol


def assert_close(name, actual, expected, dtype=None, *, rtol=None, atol=None):
    """Assert ``actual`` matches ``expected`` elementwise; the failure names ``name``.

    Parameters
    ----------
    name : str
        What is compared (shown in the failure message), e.g. ``"h_states[3]"``.
    actual, expected : array_like
        Same shape required. NaNs must sit at the same places.
    dtype : np.float32 or np.float64, optional
        Precision of the computation under test (selects the tolerance); defaults to the dtype of
        ``actual`` (float64 for non-float input).
    rtol, atol : float, optional
        Override the dtype's tolerance.
    """
    actual_arr = np.asarray(actual)
    expected_arr = np.asarray(expected, dtype=np.float64)
    if dtype is None:
        dtype = actual_arr.dtype if actual_arr.dtype in TOLERANCES else np.float64
    d_rtol, d_atol = tolerance(dtype, expected_arr)
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    assert actual_arr.shape == expected_arr.shape, (
        f"{name}: shape {actual_arr.shape} != expected {expected_arr.shape}")
    act = actual_arr.astype(np.float64)
    ok = np.isclose(act, expected_arr, rtol=rtol, atol=atol, equal_nan=True)
    if not ok.all():
        err = np.abs(act - expected_arr)
        err = np.where(ok, -np.inf, np.where(np.isnan(err), np.inf, err))
        worst = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
        raise AssertionError(
            f"{name}: {int((~ok).sum())} of {ok.size} entries differ beyond rtol={rtol:.1e}, "
            f"atol={atol:.1e} ({np.dtype(dtype).name}); worst at index {worst}: actual "
            f"{act[worst]!r}, expected {expected_arr[worst]!r} (abs err {err[worst]:.3e})")


def assert_params_close(fast, ref, dtype=None, prefix="", **kw):
    """Every parameter of the seed model, each compared by name."""
    for name in PARAM_NAMES:
        assert_close(prefix + name, getattr(fast, name), getattr(ref, name), dtype, **kw)


def snapshot(model):
    """Copies of all parameters of a seed-style model, keyed by name."""
    return {name: np.array(getattr(model, name), copy=True) for name in PARAM_NAMES}


def make_sequences(rng, input_size, output_size, lengths, scale=1.0):
    """Lists of input sequences ``(T, I)`` and target sequences ``(T, O)`` of the given lengths."""
    X = [rng.normal(size=(T, input_size)) for T in lengths]
    y = [scale * rng.normal(size=(T, output_size)) for T in lengths]
    return X, y


# ------------------------------------------------------------------------------------------------
# The notebooks' printed numbers (copied verbatim from the seeds; see /work/shared/seeds)
# ------------------------------------------------------------------------------------------------

# Notebook 003, cell [8].
SEED003_H_NEXT = [-0.24236866, -0.47552629, -0.61342184, 0.2937933]
SEED003_C_NEXT = [-2.00175213, -0.54923161, -1.26657864, 0.33225723]
SEED003_PRINT_ATOL = 5e-9 + 1e-15  # printed with 8 decimals

# Notebook 004, cells [67] and [69]: per step (forget, input, candidate, cell, output, hidden).
SEED004_TABLE = [
    (0.6225, 0.6457, 0.6044, 0.3902, 0.6900, 0.2564),
    (0.7361, 0.7775, 0.9009, 0.9877, 0.8459, 0.6398),
    (0.8269, 0.8730, 0.9798, 1.6721, 0.9344, 0.8707),
]
SEED004_FUTURE = 3.4827
SEED004_PRINT_ATOL = 5e-5 + 1e-12  # printed with 4 decimals
SEED004_PARAMETERS = {
    "forget": (0.5, 0.1, 0),
    "input": (0.6, 0.2, 0),
    "cell": (0.7, 0.3, 0),
    "output": (0.8, 0.4, 0),
}


def seed003_inputs():
    """Notebook 003's inputs, drawn exactly as its cell [5] does."""
    n_features, n_hidden_units = 10, 4
    np.random.seed(42)
    x_t = np.random.randn(n_features)
    h_prev = np.random.randn(n_hidden_units)
    c_prev = np.random.randn(n_hidden_units)
    Wf = np.random.randn(n_hidden_units, n_hidden_units + n_features)
    Wi = np.random.randn(n_hidden_units, n_hidden_units + n_features)
    Wo = np.random.randn(n_hidden_units, n_hidden_units + n_features)
    Wc = np.random.randn(n_hidden_units, n_hidden_units + n_features)
    bf = np.random.randn(n_hidden_units)
    bi = np.random.randn(n_hidden_units)
    bo = np.random.randn(n_hidden_units)
    bc = np.random.randn(n_hidden_units)
    return x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc


@contextlib.contextmanager
def quiet():
    """Swallow stdout (the seed class prints every 10 epochs)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


@pytest.fixture
def rng(request):
    """A NumPy Generator seeded from the test's name, so each test draws its own stable data."""
    seed = sum(map(ord, request.node.nodeid)) % (2**32)
    return np.random.default_rng(seed)


def numerical_gradient(f, array, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of ``array``
    (perturbed in place and restored)."""
    grad = np.empty_like(array)
    flat, grad_flat = array.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        saved = flat[k]
        flat[k] = saved + eps
        plus = f()
        flat[k] = saved - eps
        minus = f()
        flat[k] = saved
        grad_flat[k] = (plus - minus) / (2 * eps)
    return grad


#: The ISA paths this CPU runs (best first): the kernels' tests run on each of them.
SUPPORTED_ISAS = tuple(_core.supported_isas())


@pytest.fixture(params=SUPPORTED_ISAS)
def isa(request):
    """Run the test on one ISA path (every path this CPU has), restoring the default after."""
    previous = _core._set_isa(request.param)
    try:
        yield request.param
    finally:
        _core._set_isa(previous)


@pytest.fixture
def threads():
    """fastlstm.set_num_threads for a test, restored after it. A setting of two or more also
    turns the core check off (fastlstm.set_core_check), so the team asked for runs whatever
    else the machine is running: tests of teams need the team."""
    def set_threads(n):
        fastlstm.set_num_threads(n)
        fastlstm.set_core_check(n is None or n < 2)
    try:
        yield set_threads
    finally:
        fastlstm.set_num_threads(None)
        fastlstm.set_core_check(True)


def run_cli(*args, cwd=None, in_subprocess=False):
    """``fastlstm *args``: its exit status, stdout and stderr (as ``subprocess.run`` gives them).

    By default in this process, through ``fastlstm.cli.main`` (what ``python -m fastlstm``
    calls), so a test does not pay an interpreter start and the imports (0.4 s each on a slow
    machine); ``in_subprocess=True`` runs the installed command itself, as a user would."""
    args = [str(a) for a in args]
    if in_subprocess:
        return subprocess.run([sys.executable, "-m", "fastlstm", *args], capture_output=True,
                              text=True, cwd=cwd, timeout=300)
    from fastlstm import cli

    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(args)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if isinstance(exc.code, str):
                    err.write(exc.code + "\n")
    finally:
        os.chdir(here)
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


# Blockings the packed product may run (fl_blocking overrides; {} is the path's own choice):
# the two AVX-512 choices (blocks of k apart for X^T dG in the first), the smallest of everything (1-row tiles, one row of k a block, one
# tile and one panel a block), odd sizes that leave partial blocks everywhere, and values past
# every limit (clamped to what the code allows).
BLOCKINGS = [{}, {"mr": 12, "kc_bytes": 65536, "kca_bytes": 16384, "mc_tiles": 2, "ncq": 32},
             {"mr": 6, "kc_bytes": 32768, "mc_tiles": 2, "ncq": 16},
             {"mr": 1, "kc_bytes": 1, "mc_tiles": 1, "ncq": 1},
             {"mr": 5, "kc_bytes": 3000, "kca_bytes": 700, "mc_tiles": 3, "ncq": 3},
             {"mr": 1000, "kc_bytes": 2**29, "mc_tiles": 2**29, "ncq": 2**29}]


@pytest.fixture
def blocking():
    """Set the product's blocking for a test, restoring the path's choice after."""
    previous = _core._set_gemm_blocking()
    try:
        yield lambda b: _core._set_gemm_blocking(**b)
    finally:
        _core._set_gemm_blocking(**previous)
