"""Determinism and crash safety, run as separate processes: the same seed gives bit-identical
weights, losses and predictions from one run to the next, and a save killed midway leaves the
previous file intact."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fastlstm

RUN = textwrap.dedent("""
    import hashlib, numpy as np, fastlstm
    h = hashlib.sha256()
    layer = fastlstm.LSTMLayer(3, 7, 2, bidirectional=True, seed=11)
    x = np.random.default_rng(0).standard_normal((9, 4, 3)).astype(np.float32)
    y, _ = layer.forward(x)
    layer.backward(np.ones_like(y))
    h.update(layer.flat.tobytes()); h.update(y.tobytes()); h.update(layer.grad_flat.tobytes())
    np.random.seed(5)
    seed_model = fastlstm.LSTM(1, 6, 1, verbose=False)
    X = [np.sin(np.arange(i, i + 8) / 3.0) for i in range(20)]
    h.update(np.array(seed_model.train(X, [np.roll(s, -1) for s in X], 3)).tobytes())
    h.update(seed_model.flat.tobytes())
    try:
        est = fastlstm.LSTMRegressor(hidden_size=5, epochs=4, random_state=3)
        Xr = np.random.default_rng(1).standard_normal((50, 6, 2))
        est.fit(Xr, Xr[:, -1, 0])
        h.update(np.array(est.history_["loss"]).tobytes()); h.update(est.predict(Xr).tobytes())
    except ImportError:
        pass
    print(h.hexdigest())
""")


@pytest.mark.slow  # fresh interpreters; .ci/run runs it after the default suite
def test_same_seed_is_bit_identical_run_after_run():
    digests = {subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True,
                              check=True, timeout=300).stdout.strip() for _ in range(3)}
    assert len(digests) == 1 and len(digests.pop()) == 64


SAVER = textwrap.dedent("""
    import sys, numpy as np, fastlstm
    path = sys.argv[1]
    layer = fastlstm.LSTMLayer(64, 256, 2, bidirectional=True, dtype=np.float64, seed=0)
    print("ready", flush=True)
    k = 0
    while True:
        layer.flat[:] = k  # every saved file holds one value throughout
        fastlstm.save(layer, path)
        k += 1
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.slow  # fresh interpreters; .ci/run runs it after the default suite
def test_a_save_killed_midway_leaves_a_whole_file(tmp_path):
    """A process saving a 6 MB model in a loop is killed at random moments: the file on disk
    is always one complete save, never a torn one."""
    path = tmp_path / "model.npz"
    layer = fastlstm.LSTMLayer(64, 256, 2, bidirectional=True, dtype=np.float64, seed=0)
    layer.flat[:] = -1.0
    fastlstm.save(layer, path)
    rng = np.random.default_rng(0)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(path)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.05, 0.4)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        loaded = fastlstm.load(path)
        values = np.unique(loaded.flat)
        assert values.size == 1, "a torn file: values of two saves mixed"
    # what a killed save leaves behind is at most its temporary file, never the target's name
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model.npz"]
    assert all(n.startswith(".fastlstm-") and n.endswith(".tmp") for n in leftovers)
