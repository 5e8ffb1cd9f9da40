"""Resident memory does not grow over 100,000 calls into the C kernels (Linux only).

A leak in the Cython wrappers or the kernels (a buffer, a memoryview or a reference kept per call)
grows the process's RSS with the number of calls: 64 bytes a call over 100,000 calls is 6 MiB.
Each test first makes WARMUP calls (so that pymalloc's arenas, NumPy's small-buffer cache and the
allocator's free lists reach their steady state), reads the RSS from /proc/self/statm, makes
CALLS = 100,000 more and allows RSS_BOUND (4 MiB) of growth. Every test makes the full 100,000
calls: the whole file takes about 12 s (1.3 to 3.5 s a test).

Skipped under AddressSanitizer (scripts/sanitize.sh): its quarantine keeps freed memory resident
on purpose, so RSS says nothing there.
"""

from __future__ import annotations

import gc
import os
import sys

import numpy as np
import pytest

import fastlstm


def _asan_loaded():
    try:
        with open("/proc/self/maps") as maps:
            return "libasan" in maps.read()
    except OSError:
        return False


pytestmark = [
    pytest.mark.slow,  # 100,000 calls a test: run after the default suite (.ci/run)
    pytest.mark.skipif(not sys.platform.startswith("linux") or
                       not os.path.exists("/proc/self/statm"),
                       reason="reads the RSS from /proc/self/statm (Linux)"),
    pytest.mark.skipif(sys.platform.startswith("linux") and _asan_loaded(),
                       reason="under ASan, freed memory stays resident (quarantine)"),
]

CALLS = 100_000
WARMUP = 5_000
MiB = 1 << 20
RSS_BOUND = 4 * MiB


def _rss():
    """Resident set size of this process in bytes (second field of /proc/self/statm)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def assert_rss_flat(call, calls=CALLS, warmup=WARMUP):
    """Run ``call()`` warmup times, then ``calls`` times; RSS may grow by RSS_BOUND at most."""
    for _ in range(warmup):
        call()
    gc.collect()
    before = _rss()
    for _ in range(calls):
        call()
    gc.collect()
    growth = _rss() - before
    assert growth < RSS_BOUND, (
        f"RSS grew by {growth / MiB:.2f} MiB over {calls} calls ({growth / calls:.1f} bytes a "
        f"call; bound {RSS_BOUND / MiB:.0f} MiB)")
    return growth


LAYER_CONFIGS = {
    "float64": dict(dtype=np.float64),
    # the ONNX extras take another branch of _core.seq_forward/seq_backward
    "float32-onnx-extras": dict(dtype=np.float32, peepholes=True, clip=3.0, input_forget=True,
                                reverse=True, activation="relu"),
}


@pytest.mark.parametrize("config", LAYER_CONFIGS.values(), ids=LAYER_CONFIGS.keys())
def test_layer_forward_backward_keeps_rss_flat(config):
    I, H, T, B = 3, 4, 5, 2
    layer = fastlstm.LSTMLayer(I, H, seed=0, **config)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I))
    dy = rng.standard_normal((T, B, H))
    state = (rng.standard_normal((1, B, H)), rng.standard_normal((1, B, H)))
    y0, _ = layer.forward(x, state)

    def call():
        y, (h_n, c_n) = layer.forward(x, state)
        layer.backward(dy, (h_n, c_n))

    assert_rss_flat(call)
    # the calls did run the kernels: same input, same output (backward updates nothing)
    y, _ = layer.forward(x, state)
    np.testing.assert_array_equal(y, y0)
    assert np.isfinite(layer.grads["weight_ih_l0"]).all()


def test_layer_inference_keeps_rss_flat():
    layer = fastlstm.LSTMLayer(3, 4, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    assert_rss_flat(lambda: layer.forward(x, training=False))


def _notebook_model():
    np.random.seed(0)
    return fastlstm.LSTM(3, 4, 1, verbose=False)


def test_notebook_lstm_forward_backward_keeps_rss_flat():
    model = _notebook_model()
    rng = np.random.default_rng(0)
    inputs, targets = rng.standard_normal((5, 3)), rng.standard_normal((5, 1))

    def call():
        model.forward(inputs)
        model.backward(targets)

    assert_rss_flat(call)
    model.forward(inputs)
    assert np.isfinite(model.backward(targets))


def test_notebook_lstm_train_keeps_rss_flat():
    """One epoch over one sequence a call: each call packs the data and runs the C loop."""
    model = _notebook_model()
    rng = np.random.default_rng(0)
    X, Y = [rng.standard_normal((5, 3))], [rng.standard_normal((5, 1))]
    assert_rss_flat(lambda: model.train(X, Y, epochs=1))
    assert np.isfinite(model.train(X, Y, epochs=1)).all()
