"""Benchmarks of the core issue: fastlstm.LSTM vs the NumPy reference class (same group per
workload). Run: `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/bench_core.py
--benchmark-enable --benchmark-group-by=group`. Parity is checked before timing."""

import contextlib
import io

import numpy as np
import pytest

import fastlstm
from fastlstm import reference


def _pair(I, H, O, seed=0):
    np.random.seed(seed)
    ref = reference.LSTM(I, H, O)
    np.random.seed(seed)
    fast = fastlstm.LSTM(I, H, O, verbose=False)
    return ref, fast


@pytest.mark.benchmark(group="seed demo: one training epoch (152 sequences, T=10, H=10)")
@pytest.mark.parametrize("impl", ["reference", "fastlstm"])
def test_seed_demo_epoch(benchmark, impl, seed_demo_data):
    X, y = seed_demo_data
    ref, fast = _pair(1, 10, 1)
    with contextlib.redirect_stdout(io.StringIO()):
        ref_loss = ref.train(X, y, 1)
    assert np.allclose(fast.train(X, y, 1), ref_loss, rtol=1e-12)
    if impl == "reference":
        with contextlib.redirect_stdout(io.StringIO()):
            benchmark.pedantic(ref.train, args=(X, y, 1), rounds=5, iterations=1)
    else:
        benchmark.pedantic(fast.train, args=(X, y, 1), rounds=200, iterations=1)


@pytest.mark.benchmark(group="forward + backward of one sequence (T=50, I=32, H=128)")
@pytest.mark.parametrize("impl", ["reference", "fastlstm"])
def test_forward_backward(benchmark, impl):
    rng = np.random.default_rng(0)
    x = list(rng.standard_normal((50, 32)))
    t = list(rng.standard_normal((50, 1)))
    ref, fast = _pair(32, 128, 1)
    assert np.allclose(np.array(ref.forward(x)[1]), np.array(fast.forward(x)[1]), rtol=1e-12)
    model = ref if impl == "reference" else fast

    def step():
        model.forward(x)
        return model.backward(t)

    benchmark.pedantic(step, rounds=20 if impl == "reference" else 200, iterations=1)
