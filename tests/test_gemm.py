"""The kernels' GEMM contract (row-major C = alpha op(A) op(B) + beta C) on both of its paths:
the packed, blocked product of every ISA path the CPU has (one and two threads), and the plain C
loops, against NumPy."""

import numpy as np
import pytest

from fastlstm import _core


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("path, n_threads", [("packed", 1), ("packed", 2), ("naive", 1)])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
# (2, 1100, 9) and (30, 1100, 20): more column panels than one panel block (32 panels of 32
# floats or 16 doubles on AVX-512), with one and two rows (the four-panel tile) and several
# row blocks.
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (1, 40, 11), (7, 5, 3), (33, 17, 70),
                                     (130, 70, 600), (2, 1100, 9), (30, 1100, 20)])
def test_gemm_matches_numpy(m, n, k, trans_a, trans_b, path, n_threads, dtype, rtol, isa):
    rng = np.random.default_rng(m * 100 + n * 10 + k)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    expected = 0.5 * (a.T if trans_a else a).astype(np.float64) @ \
        (b.T if trans_b else b).astype(np.float64) + 2.0 * c.astype(np.float64)
    _core.gemm(a, b, c, trans_a=trans_a, trans_b=trans_b, alpha=0.5, beta=2.0, path=path,
               threads=n_threads)
    np.testing.assert_allclose(c, expected, rtol=rtol, atol=rtol * np.abs(expected).max(),
                               err_msg=f"C (m={m}, n={n}, k={k}, {path}, {isa})")


@pytest.mark.parametrize("path", ["packed", "naive"])
def test_beta_zero_ignores_nan_in_c(path, isa):
    """BLAS semantics: with beta = 0 the old C is not read, so its NaNs do not leak."""
    a, b = np.ones((2, 3)), np.ones((3, 4))
    c = np.full((2, 4), np.nan)
    _core.gemm(a, b, c, beta=0.0, path=path)
    np.testing.assert_array_equal(c, np.full((2, 4), 3.0))


def test_gemm_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes do not fit"):
        _core.gemm(np.ones((2, 3)), np.ones((4, 2)), np.ones((2, 2)))
