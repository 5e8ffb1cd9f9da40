"""The kernels' GEMM contract (row-major C = alpha op(A) op(B) + beta C) on both of its paths:
the packed, blocked product of every ISA path the CPU has (one and two threads), and the plain C
loops, against NumPy."""

import numpy as np
import pytest

from fastlstm import _core

from conftest import BLOCKINGS


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
# k past two blocks of k, rows past a row block, panels past a panel block, one and two rows
@pytest.mark.parametrize("m, n, k", [(130, 1100, 600), (2, 1100, 300), (1, 70, 9)])
def test_every_blocking_gives_the_same_bits(m, n, k, trans_a, dtype, isa, blocking):
    rng = np.random.default_rng(m + n + k)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    outs = []
    for blk in BLOCKINGS:
        blocking(blk)
        for n_threads in (1, 2):
            c = c0.copy()
            _core.gemm(a, b, c, trans_a=trans_a, beta=1.0, threads=n_threads)
            outs.append((blk, n_threads, c))
    expected = (a.T if trans_a else a).astype(np.float64) @ b.astype(np.float64) + c0
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(outs[0][2], expected, rtol=rtol,
                               atol=rtol * np.abs(expected).max())
    for blk, n_threads, c in outs[1:]:
        assert _core.same_bytes(c, outs[0][2]), (blk, n_threads, isa)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_blocking_a_path_runs(dtype, isa, blocking):
    """Overrides are clamped to what the code allows (a tile of packed A fits its 48 KiB), and
    the AVX-512 path's own choice follows the L1 data cache the CPU reports."""
    size = np.dtype(dtype).itemsize
    vl = _core.vector_bytes(_core.isa()) // size
    most_rows = 12 if vl * size >= 64 else 6
    for blk in BLOCKINGS:
        blocking(blk)
        got = _core.gemm_blocking(dtype)
        assert 1 <= got["mr"] <= most_rows and got["mr"] == min(blk.get("mr", got["mr"]),
                                                               most_rows)
        assert 1 <= got["kc"] and got["kc"] * got["mr"] * size <= 49152
        assert 1 <= got["kca"] and got["kca"] * got["mr"] * size <= 49152
        if blk.get("kc_bytes"):  # sets both blocks of k, unless kca_bytes sets the second
            for key in ("kc", "kca"):
                want = blk.get("kca_bytes", blk["kc_bytes"]) if key == "kca" else blk["kc_bytes"]
                assert got[key] == max(1, min(want // (2 * vl * size),
                                              49152 // (got["mr"] * size)))
        assert got["mc"] % got["mr"] == 0 and got["mc"] >= got["mr"]
        assert 1 <= got["ncq"] <= 2**24
    blocking({})
    got = _core.gemm_blocking(dtype)
    panel_bytes = {key: got[key] * 2 * vl * size for key in ("kc", "kca")}
    if isa == "avx512":
        small_l1 = 0 < _core.l1d_bytes() < 49152
        assert got["mr"] == (6 if small_l1 else 12)
        assert panel_bytes == ({"kc": 32768, "kca": 32768} if small_l1
                               else {"kc": 65536, "kca": 16384})
    else:
        assert got["mr"] == 6 and panel_bytes == {"kc": 16384, "kca": 16384}


def test_set_gemm_blocking_refuses_bad_values(blocking):
    for bad in ({"mr": -1}, {"kc_bytes": 1.5}, {"ncq": 2**31}, {"mc_tiles": True},
                {"kca_bytes": -3}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            _core._set_gemm_blocking(**bad)
    assert _core._set_gemm_blocking() == {"mr": 0, "kc_bytes": 0, "mc_tiles": 0, "ncq": 0,
                                          "kca_bytes": 0}


def test_l1d_bytes_is_what_the_system_reports():
    """CPUID's L1 data cache against the kernel's own account of it (Linux sysfs)."""
    import pathlib
    index = pathlib.Path("/sys/devices/system/cpu/cpu0/cache")
    sizes = []
    for d in sorted(index.glob("index*")):
        try:
            if (d / "level").read_text().strip() == "1" and \
                    (d / "type").read_text().strip() == "Data":
                sizes.append((d / "size").read_text().strip())
        except OSError:
            pass
    if not sizes or not sizes[0].endswith("K"):
        pytest.skip("no L1 data cache in sysfs")
    assert _core.l1d_bytes() == int(sizes[0][:-1]) * 1024
