"""Threads: the kernels release the GIL, models used from several threads give the results of a
sequential run, and the thread count does not change the numbers."""

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastlstm

from conftest import BLOCKINGS


def _train_step(seed):
    layer = fastlstm.LSTMLayer(4, 16, 2, bidirectional=True, dtype=np.float64, seed=seed)
    x = np.random.default_rng(seed).standard_normal((30, 8, 4))
    y, _ = layer.forward(x)
    dx, _ = layer.backward(np.cos(y))
    return y, dx, layer.grad_flat.copy()


def test_separate_models_in_threads_equal_a_sequential_run():
    seeds = list(range(8))
    sequential = [_train_step(s) for s in seeds]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(_train_step, seeds))
    for a, b in zip(sequential, threaded):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


def test_shared_model_inference_in_threads_equals_a_sequential_run():
    layer = fastlstm.LSTMLayer(3, 24, 2, dtype=np.float32, seed=0)
    inputs = [np.random.default_rng(k).standard_normal((40, 1 + k, 3)).astype(np.float32)
              for k in range(12)]
    sequential = [layer.forward(x, training=False) for x in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda x: layer.forward(x, training=False), inputs))
    for (y1, (h1, c1)), (y2, (h2, c2)) in zip(sequential, threaded):
        np.testing.assert_array_equal(y1, y2)
        np.testing.assert_array_equal(c1, c2)


def test_forward_releases_the_gil():
    """While one thread is inside a long forward pass, Python code in another thread keeps
    running: the longest pause of a busy loop stays far below the call's duration."""
    layer = fastlstm.LSTMLayer(8, 128, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((30000, 1, 8))
    start = time.perf_counter()
    layer.forward(x, training=False)
    duration = time.perf_counter() - start
    if duration < 0.05:
        pytest.skip("the call is too short on this machine to observe")
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(layer.forward, x, training=False)
        stamps = [time.perf_counter()]
        while not future.done():
            stamps.append(time.perf_counter())
        future.result()
    gaps = np.diff(stamps)
    assert len(stamps) > 100 and gaps.max() < duration / 2, (gaps.max(), duration)


def test_thread_counts_do_not_change_the_results(threads):
    """fastlstm.set_num_threads and OpenMP's default (threadpoolctl's limit) both set the team
    size, and the team splits outputs, never sums: the bits do not change."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    cases = [(fastlstm.LSTMLayer(6, 40, dtype=np.float64, seed=0), (12, 80, 6)),
             (fastlstm.LSTMLayer(6, 132, dtype=np.float64, seed=0), (5, 20, 6))]
    for layer, shape in cases:
        threads(None)  # the default: OpenMP's team size
        x = np.random.default_rng(1).standard_normal(shape)
        y_default, _ = layer.forward(x)
        dx_default = layer.backward(np.ones_like(y_default))[0]
        with threadpoolctl.threadpool_limits(1):
            assert fastlstm.get_num_threads() == 1 or not fastlstm.config()["openmp"]
            y_one, _ = layer.forward(x)
            dx_one = layer.backward(np.ones_like(y_one))[0]
        threads(2)
        y_two, _ = layer.forward(x)
        dx_two = layer.backward(np.ones_like(y_two))[0]
        for y, dx in ((y_one, dx_one), (y_two, dx_two)):
            np.testing.assert_array_equal(y, y_default)
            np.testing.assert_array_equal(dx, dx_default)


def test_seed_class_forward_backward_same_bits_with_a_team(threads):
    # H = 128: large enough for the units split (one barrier a step) in fastlstm.LSTM
    rng = np.random.default_rng(5)
    x, t = rng.standard_normal((30, 32)), rng.standard_normal((30, 1))
    results = []
    for n in (1, 2):
        threads(n)
        np.random.seed(3)
        model = fastlstm.LSTM(32, 128, 1, verbose=False)
        _, outputs = model.forward(x)
        loss = model.backward(t)
        results.append((np.array(outputs), loss, model.flat.copy()))
        if n == 2 and fastlstm.config()["openmp"]:  # the team did run
            assert model._governor.samples[("forward", 30)][0]
            assert model._governor.samples[("backward", 30)][0]
    assert np.array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]
    assert np.array_equal(results[0][2], results[1][2])


def test_the_products_blocking_does_not_change_the_results(isa, blocking):
    """The blocking of the packed product is loop bounds only: a layer's forward and backward
    (projection, steps, dX, dW) give the same bits under every blocking."""
    layer = fastlstm.LSTMLayer(40, 70, 2, bidirectional=True, dtype=np.float32, seed=0)
    x = np.random.default_rng(1).standard_normal((9, 30, 40)).astype(np.float32)
    results = []
    for blk in BLOCKINGS:
        blocking(blk)
        y, _ = layer.forward(x)
        dx = layer.backward(np.ones_like(y))[0]
        results.append((y, dx, layer.grad_flat.copy()))
    for y, dx, grad in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])
        np.testing.assert_array_equal(grad, results[0][2])


# -- the core check: teams cut to the cores other runnable threads leave free --------------

def _check_available():
    from fastlstm import _core
    if not fastlstm.config()["openmp"]:
        pytest.skip("no OpenMP: always one thread")
    if _core.core_check() == "unavailable":
        pytest.skip("the machine's runnable threads cannot be counted here")
    if not 2 <= _core.online_cpus() <= 8:
        pytest.skip("the test keeps every CPU busy: 2 to 8 of them")
    return _core


def test_core_check_setting_and_config():
    from fastlstm import _core
    assert fastlstm.config()["core_check"] in ("on", "off", "unavailable")
    try:
        fastlstm.set_core_check(False)
        assert fastlstm.config()["core_check"] in ("off", "unavailable")
        assert not _core.core_check_on()
        fastlstm.set_core_check(True)
        assert fastlstm.config()["core_check"] in ("on", "unavailable")
        for bad in (1, None, "yes"):
            with pytest.raises(TypeError, match="on: expected True or False"):
                fastlstm.set_core_check(bad)
    finally:
        fastlstm.set_core_check(True)


def _teams_of(layer, x, monkeypatch):
    """The teams the layer's kernel calls ran with (what they report to the governor)."""
    from fastlstm import _governor
    seen = []
    report = _governor.TeamGovernor.report

    def spy(self, key, stats):
        seen.append(stats[0])
        return report(self, key, stats)
    monkeypatch.setattr(_governor.TeamGovernor, "report", spy)
    y, _ = layer.forward(x)
    dx, _ = layer.backward(np.ones_like(y))
    monkeypatch.setattr(_governor.TeamGovernor, "report", report)
    return seen, y, dx


def test_core_check_runs_one_thread_while_every_core_is_busy(monkeypatch):
    """With a busy process on every CPU the count sees them and the calls run on one thread;
    with the check off the full team runs; the bits are the same."""
    import subprocess
    import sys
    _core = _check_available()
    layer = fastlstm.LSTMLayer(32, 128, dtype=np.float64, seed=0)  # 64 Ki weights: a team
    x = np.random.default_rng(0).standard_normal((20, 32, 32))
    busy = []
    try:
        fastlstm.set_num_threads(2)
        teams_free, y_free, dx_free = _teams_of(layer, x, monkeypatch)
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(_core.online_cpus())]
        deadline = time.monotonic() + 20
        while _core.busy_threads() < len(busy) and time.monotonic() < deadline:
            time.sleep(0.002)
        assert _core.busy_threads() >= len(busy)
        assert _core.team_for(2) == 1
        assert _core.team_for(2, long_call=True) == 2  # a long barrier-free call keeps its team
        teams_busy, y_busy, dx_busy = _teams_of(layer, x, monkeypatch)
        assert teams_busy and set(teams_busy) == {1}
        fastlstm.set_core_check(False)
        teams_fixed, y_fixed, dx_fixed = _teams_of(layer, x, monkeypatch)
        assert teams_fixed and set(teams_fixed) == {2}
    finally:
        for p in busy:
            p.kill()
            p.wait()
        fastlstm.set_num_threads(None)
        fastlstm.set_core_check(True)
    assert teams_free  # the calls reported (whatever team the machine allowed then)
    for y, dx in ((y_busy, dx_busy), (y_fixed, dx_fixed)):
        np.testing.assert_array_equal(y, y_free)
        np.testing.assert_array_equal(dx, dx_free)


def test_governor_stands_aside_while_the_kernels_count_the_cores():
    from fastlstm._governor import TeamGovernor
    _core = _check_available()
    try:
        fastlstm.set_num_threads(2)
        gov, key = TeamGovernor(), ("k",)
        picks = []
        for _ in range(40):
            picks.append(gov.threads(key))
            gov.report(key, (2, 3e-3) if picks[-1] == 0 else (1, 1e-3))  # one thread "faster"
        assert picks == [0] * 40 and _core.core_check_on()
    finally:
        fastlstm.set_num_threads(None)


def test_core_check_is_unavailable_on_some_of_the_cpus():
    """A process allowed on only some of the online CPUs cannot attribute the machine's count
    (the others' threads would count): the check says so, and the governor takes over."""
    import subprocess
    import sys
    _check_available()
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "import fastlstm; from fastlstm import _core; "
            "print(fastlstm.config()['core_check'], _core.core_check_on(), _core.team_for(2))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["unavailable", "False", "2"]
