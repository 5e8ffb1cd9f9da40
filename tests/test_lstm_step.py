"""fastlstm.lstm_step: notebook 003's signature on the C kernels.

Expected values come from the notebooks' printed numbers (003, 004) and from
``fastlstm.reference.lstm_step`` (the notebook's NumPy code).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastlstm
from fastlstm import reference

from conftest import (SEED003_C_NEXT, SEED003_H_NEXT, SEED003_PRINT_ATOL, SEED004_FUTURE,
                      SEED004_PARAMETERS, SEED004_PRINT_ATOL, SEED004_TABLE, assert_close,
                      seed003_inputs)

ARG_NAMES = ("x_t", "h_prev", "c_prev", "Wf", "Wi", "Wo", "Wc", "bf", "bi", "bo", "bc")


def random_step_args(rng, I, H, B=None, scale=1.0, bias_column=False):
    """Arguments of lstm_step in its order; rows of a batch when B is given."""
    lead = () if B is None else (B,)
    x = rng.normal(size=lead + (I,))
    h = rng.normal(size=lead + (H,))
    c = rng.normal(size=lead + (H,))
    weights = [scale * rng.normal(size=(H, H + I)) for _ in range(4)]
    bshape = (H, 1) if bias_column else (H,)
    biases = [rng.normal(size=bshape) for _ in range(4)]
    return [x, h, c, *weights, *biases]


def reference_step(args):
    """reference.lstm_step on 1-D arguments (biases flattened as the notebook has them)."""
    x, h, c, *rest = args
    weights, biases = rest[:4], [np.reshape(b, -1) for b in rest[4:]]
    return reference.lstm_step(x, h, c, *weights, *biases)


def test_reproduces_seed003_printed_values():
    h_next, c_next = fastlstm.lstm_step(*seed003_inputs())
    assert h_next.shape == c_next.shape == (4,)
    assert h_next.dtype == c_next.dtype == np.float64
    assert_close("h_next", h_next, SEED003_H_NEXT, atol=SEED003_PRINT_ATOL, rtol=0)
    assert_close("c_next", c_next, SEED003_C_NEXT, atol=SEED003_PRINT_ATOL, rtol=0)


def test_seed003_keyword_call():
    """The notebook's parameter names work as keywords."""
    args = dict(zip(ARG_NAMES, seed003_inputs()))
    h_next, c_next = fastlstm.lstm_step(**args)
    assert_close("h_next", h_next, SEED003_H_NEXT, atol=SEED003_PRINT_ATOL, rtol=0)
    assert_close("c_next", c_next, SEED003_C_NEXT, atol=SEED003_PRINT_ATOL, rtol=0)


@pytest.mark.parametrize("I,H", [(1, 1), (10, 4), (3, 7), (17, 33), (64, 128)])
@pytest.mark.parametrize("bias_column", [False, True], ids=["bias(H,)", "bias(H,1)"])
def test_equals_reference(rng, I, H, bias_column):
    args = random_step_args(rng, I, H, bias_column=bias_column)
    expected_h, expected_c = reference_step(args)
    h_next, c_next = fastlstm.lstm_step(*args)
    assert h_next.shape == c_next.shape == (H,)
    assert_close("h_next", h_next, expected_h, np.float64)
    assert_close("c_next", c_next, expected_c, np.float64)


def test_does_not_modify_its_arguments(rng):
    args = random_step_args(rng, 3, 5)
    before = [a.copy() for a in args]
    fastlstm.lstm_step(*args, return_gates=True)
    for name, a, b in zip(ARG_NAMES, args, before):
        assert np.array_equal(a, b), f"lstm_step modified {name}"


def test_return_gates_equal_reference_gates(rng):
    I, H = 4, 6
    x, h, c, Wf, Wi, Wo, Wc, bf, bi, bo, bc = random_step_args(rng, I, H)
    concat = np.concatenate([h, x])
    expected = {
        "forget": reference.sigmoid(Wf @ concat + bf),
        "input": reference.sigmoid(Wi @ concat + bi),
        "candidate": np.tanh(Wc @ concat + bc),
        "output": reference.sigmoid(Wo @ concat + bo),
    }
    h_next, c_next, gates = fastlstm.lstm_step(x, h, c, Wf, Wi, Wo, Wc, bf, bi, bo, bc,
                                               return_gates=True)
    assert set(gates) == set(expected)
    for name, value in expected.items():
        assert gates[name].shape == (H,)
        assert_close(f"gates[{name!r}]", gates[name], value, np.float64)
    expected_h, expected_c = reference.lstm_step(x, h, c, Wf, Wi, Wo, Wc, bf, bi, bo, bc)
    assert_close("h_next", h_next, expected_h, np.float64)
    assert_close("c_next", c_next, expected_c, np.float64)


def seed004_weights():
    """Notebook 004's scalar (w_input, w_hidden, bias) as lstm_step arguments.

    The weights act on [h, x], so (w_input, w_hidden) becomes W = [[w_hidden, w_input]]."""
    W = {gate: np.array([[w_hidden, w_input]], dtype=np.float64)
         for gate, (w_input, w_hidden, _) in SEED004_PARAMETERS.items()}
    b = {gate: np.array([bias], dtype=np.float64)
         for gate, (_, _, bias) in SEED004_PARAMETERS.items()}
    return ([W["forget"], W["input"], W["output"], W["cell"]],
            [b["forget"], b["input"], b["output"], b["cell"]])


def test_reproduces_seed004_gate_table():
    weights, biases = seed004_weights()
    h, c = np.zeros(1), np.zeros(1)
    for step, (value, row) in enumerate(zip([1, 2, 3], SEED004_TABLE), start=1):
        h, c, gates = fastlstm.lstm_step(np.array([value]), h, c, *weights, *biases,
                                         return_gates=True)
        forget, input_, candidate, cell, output, hidden = row
        for name, actual, printed in (("Forget Gate", gates["forget"], forget),
                                      ("Input Gate", gates["input"], input_),
                                      ("Candidate Cell", gates["candidate"], candidate),
                                      ("Cell State", c, cell),
                                      ("Output Gate", gates["output"], output),
                                      ("Hidden State", h, hidden)):
            assert_close(f"step {step} {name}", actual, [printed], atol=SEED004_PRINT_ATOL,
                         rtol=0)
            assert f"{actual[0]:.4f}" == f"{printed:.4f}", f"step {step} {name} prints differently"
    assert_close("Estimated Future Value", 4 * h, [SEED004_FUTURE], atol=SEED004_PRINT_ATOL,
                 rtol=0)
    assert f"{4 * h[0]:.4f}" == "3.4827"


def test_float32_in_float32_out(rng):
    args = random_step_args(rng, 5, 8)
    args32 = [a.astype(np.float32) for a in args]
    h_next, c_next, gates = fastlstm.lstm_step(*args32, return_gates=True)
    assert h_next.dtype == c_next.dtype == np.float32
    assert all(g.dtype == np.float32 for g in gates.values())
    # Against the float64 reference evaluated on the same (float32-representable) inputs.
    expected_h, expected_c = reference_step([a.astype(np.float64) for a in args32])
    assert_close("h_next (float32)", h_next, expected_h, np.float32)
    assert_close("c_next (float32)", c_next, expected_c, np.float32)


def test_mixed_precision_computes_in_float64(rng):
    args = random_step_args(rng, 5, 8)
    mixed = [a.astype(np.float32) if k % 2 else a for k, a in enumerate(args)]
    h_next, c_next = fastlstm.lstm_step(*mixed)
    assert h_next.dtype == c_next.dtype == np.float64
    expected_h, expected_c = reference_step([a.astype(np.float64) for a in mixed])
    assert_close("h_next", h_next, expected_h, np.float64)
    assert_close("c_next", c_next, expected_c, np.float64)


@pytest.mark.parametrize("B,I,H", [(1, 3, 4), (5, 3, 4), (7, 1, 1), (32, 16, 24)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batched_rows_equal_row_by_row_calls(rng, B, I, H, dtype):
    x, h, c, *params = [a.astype(dtype) for a in random_step_args(rng, I, H, B=B)]
    h_next, c_next, gates = fastlstm.lstm_step(x, h, c, *params, return_gates=True)
    assert h_next.shape == c_next.shape == (B, H)
    assert all(g.shape == (B, H) for g in gates.values())
    for r in range(B):
        h_row, c_row, gates_row = fastlstm.lstm_step(x[r], h[r], c[r], *params,
                                                     return_gates=True)
        assert_close(f"h_next[{r}]", h_next[r], h_row, dtype)
        assert_close(f"c_next[{r}]", c_next[r], c_row, dtype)
        for name in gates_row:
            assert_close(f"gates[{name!r}][{r}]", gates[name][r], gates_row[name], dtype)
        if dtype == np.float64:
            exp_h, exp_c = reference_step([x[r], h[r], c[r], *params])
            assert_close(f"h_next[{r}] vs reference", h_next[r], exp_h, dtype)
            assert_close(f"c_next[{r}] vs reference", c_next[r], exp_c, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_huge_preactivations_do_not_overflow(rng, dtype):
    """Preactivations of +-1e4: exp(1e4) overflows in the naive sigmoid; the kernel's must not
    warn, and its results are the saturated values (0, 1, +-1)."""
    H = 6
    x = np.array([1e4])  # I = 1
    h = np.zeros(H)
    c = rng.normal(size=H)
    # Column 0..H-1 act on h (zero), column H on x: every preactivation is +-1e4.
    weights = [np.hstack([rng.normal(size=(H, H)), rng.choice([-1.0, 1.0], size=(H, 1))])
               for _ in range(4)]
    biases = [np.zeros(H) for _ in range(4)]
    args = [a.astype(dtype) for a in [x, h, c, *weights, *biases]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            h_next, c_next, gates = fastlstm.lstm_step(*args, return_gates=True)
    for name, value in (("h_next", h_next), ("c_next", c_next), *gates.items()):
        assert np.all(np.isfinite(value)), f"{name} is not finite: {value}"
    with np.errstate(over="ignore"):  # the notebook's sigmoid overflows to exactly 0 here
        expected_h, expected_c = reference_step([a.astype(np.float64) for a in args])
    assert_close("h_next (saturated)", h_next, expected_h, dtype)
    assert_close("c_next (saturated)", c_next, expected_c, dtype)
    for name in ("forget", "input", "output"):
        assert set(np.unique(gates[name])) <= {0.0, 1.0}, f"{name} gate not saturated"
    assert set(np.unique(gates["candidate"])) <= {-1.0, 1.0}
