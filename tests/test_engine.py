"""The engine's process-wide surface: ISA paths (chosen at import, FASTLSTM_ISA), threads
(set_num_threads and the per-layer governor), config(), and the packed-weights cache, which
every way of changing a parameter must invalidate."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastlstm
from fastlstm import _core
from fastlstm import _reference_layer as ref
from fastlstm._governor import TeamGovernor as _TeamGovernor
from fastlstm.training import SGD


def _run(code, **env):
    """Run Python code in a fresh interpreter with extra environment variables."""
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=120)


def test_config_reports_the_engine():
    cfg = fastlstm.config()
    assert set(cfg) >= {"isa", "threads", "blas", "openmp", "version"}
    assert cfg["isa"] == cfg["isas_supported"][0] or cfg["isa_forced"]
    assert cfg["isa"] in cfg["isas_compiled"] and "generic" in cfg["isas_supported"]
    assert cfg["vector_bytes"] in (16, 32, 64)
    assert cfg["threads"] == fastlstm.get_num_threads() >= 1
    assert cfg["blas"] is None and cfg["version"] == fastlstm.__version__


def test_show_config_prints_every_key(capsys):
    fastlstm.show_config()
    out = capsys.readouterr().out
    for key in fastlstm.config():
        assert f"{key}: " in out


@pytest.mark.parametrize("name", _core.supported_isas())
def test_fastlstm_isa_forces_a_path_at_import(name):
    done = _run("import fastlstm; print(fastlstm.config()['isa'])", FASTLSTM_ISA=name)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == name


def test_fastlstm_isa_refuses_an_unknown_name():
    done = _run("import fastlstm", FASTLSTM_ISA="sse9")
    assert done.returncode != 0
    assert "FASTLSTM_ISA" in done.stderr and "unknown ISA path 'sse9'" in done.stderr


def test_fastlstm_isa_refuses_a_path_this_machine_lacks():
    missing = [n for n in _core.ISA_NAMES if n not in _core.supported_isas()]
    if not missing:
        pytest.skip("this machine runs every ISA path")
    done = _run("import fastlstm", FASTLSTM_ISA=missing[0])
    assert done.returncode != 0
    assert "FASTLSTM_ISA" in done.stderr and missing[0] in done.stderr
    assert "cannot run" in done.stderr or "has no" in done.stderr


def test_set_num_threads_validates_and_resets(threads):
    with pytest.raises(ValueError, match="positive number of threads"):
        fastlstm.set_num_threads(0)
    with pytest.raises(TypeError, match="positive int or None"):
        fastlstm.set_num_threads(1.5)
    with pytest.raises(TypeError, match="positive int or None"):
        fastlstm.set_num_threads(True)
    fastlstm.set_num_threads(3)
    assert fastlstm.get_num_threads() == (3 if fastlstm.config()["openmp"] else 1)
    fastlstm.set_num_threads(None)
    assert fastlstm.get_num_threads() >= 1


# -- the packed-weights cache ---------------------------------------------------------------

def _fresh_output(layer, x):
    """What a layer with no cache computes for the same parameters: the independent path."""
    other = fastlstm.LSTMLayer(layer.input_size, layer.hidden_size, layer.num_layers,
                               bidirectional=layer.bidirectional, dtype=layer.dtype)
    other.load_state_dict(layer.state_dict())
    return other.forward(x, training=False)[0]


@pytest.fixture
def layer_and_x():
    layer = fastlstm.LSTMLayer(3, 20, 2, bidirectional=True, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((6, 4, 3))
    layer.forward(x, training=False)  # fills the cache
    return layer, x


def test_a_write_into_a_parameters_view_is_seen(layer_and_x):
    layer, x = layer_and_x
    before = layer.forward(x, training=False)[0]
    views = dict(layer.parameters())
    views["weight_hh_l1_reverse"][3, 5] += 0.5  # in place, through the view
    after = layer.forward(x, training=False)[0]
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, _fresh_output(layer, x))


def test_load_state_dict_is_seen(layer_and_x):
    layer, x = layer_and_x
    state = {k: v * 1.1 for k, v in layer.state_dict().items()}
    layer.load_state_dict(state)
    y = layer.forward(x, training=False)[0]
    expected = ref.lstm_layer_forward(x, state, 2, True)[0]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-13)


def test_an_optimizer_step_is_seen(layer_and_x):
    layer, x = layer_and_x
    y, _ = layer.forward(x)
    layer.backward(np.ones_like(y))
    SGD(learning_rate=0.1).step([layer.flat], [layer.grad_flat.copy()])
    np.testing.assert_array_equal(layer.forward(x, training=False)[0], _fresh_output(layer, x))


def test_state_dict_copies_do_not_touch_the_layer(layer_and_x):
    layer, x = layer_and_x
    before = layer.forward(x, training=False)[0]
    layer.state_dict()["weight_ih_l0"][...] = 0  # a copy: the layer keeps its weights
    np.testing.assert_array_equal(layer.forward(x, training=False)[0], before)


def test_switching_the_isa_repacks(layer_and_x):
    layer, x = layer_and_x
    results = {}
    for name in _core.supported_isas():
        previous = _core._set_isa(name)
        try:
            results[name] = layer.forward(x, training=False)[0]
            assert layer._pack_cache[(0, 0)][0] == _core.isa()
        finally:
            _core._set_isa(previous)
    for name, y in results.items():  # every path computes the same function
        np.testing.assert_allclose(y, results["generic"], rtol=1e-12, atol=1e-13, err_msg=name)


# -- the team governor ----------------------------------------------------------------------

def test_governor_keeps_the_faster_team_and_explores(threads):
    if not fastlstm.config()["openmp"]:
        pytest.skip("no OpenMP: always one thread")
    threads(2)
    gov, key = _TeamGovernor(), ("k",)
    picks = []
    for _ in range(200):
        n = gov.threads(key)
        picks.append(n)
        # one thread is 3x faster here (a contended second core)
        gov.report(key, (2, 3e-3) if n == 0 else (1, 1e-3))
    assert picks[0] == 0 and 1 in picks[:16]  # one thread tried within the first 16 calls
    tail = picks[20:]
    assert tail.count(1) > 0.9 * len(tail) and 0 in tail  # mostly one, full team re-tried
    # conditions change: the full team becomes faster, and the governor follows
    for _ in range(100):
        n = gov.threads(key)
        picks.append(n)
        gov.report(key, (2, 0.5e-3) if n == 0 else (1, 1e-3))
    assert picks[-50:].count(0) > 45
    # two full-team calls in a row that run slow make the next call try one thread; one
    # does not
    gov2, key2 = _TeamGovernor(), ("k2",)
    for _ in range(5):
        assert gov2.threads(key2) == 0
        gov2.report(key2, (2, 1e-3))
    gov2.threads(key2)
    gov2.report(key2, (2, 5e-3))
    assert gov2.threads(key2) == 0
    gov2.report(key2, (2, 5e-3))
    assert gov2.threads(key2) == 1
    # one slow call of the full team (a neighbour's hiccup) does not flip the choice
    gov.report(key, (2, 50e-3))
    picks = []
    for _ in range(40):
        n = gov.threads(key)
        picks.append(n)
        gov.report(key, (2, 0.5e-3) if n == 0 else (1, 1e-3))
    assert picks.count(0) >= 36


def test_governor_defers_to_one_thread_settings(threads):
    threads(1)
    gov = _TeamGovernor()
    assert [gov.threads("k") for _ in range(5)] == [0] * 5


@pytest.mark.parametrize("shape, dtype", [(1, np.float32), (100_000, np.float64),
                                          ((700, 130), np.float32), ((0,), np.float64),
                                          ((16385,), np.float32)])
def test_aligned_empty_starts_on_a_cache_line(shape, dtype):
    from fastlstm._buffers import ALIGN, SMALL_BYTES, aligned_empty
    for _ in range(8):  # NumPy's own alignment varies from one allocation to the next
        a = aligned_empty(shape, dtype)
        assert a.shape == (shape if isinstance(shape, tuple) else (shape,))
        assert a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
        assert a.nbytes < SMALL_BYTES or a.ctypes.data % ALIGN == 0


def test_the_buffers_a_layer_hands_the_kernels_are_aligned():
    from fastlstm._buffers import ALIGN
    layer = fastlstm.LSTMLayer(5, 256, dtype=np.float32)
    x = np.ones((30, 4, 5), np.float32)
    y, _ = layer.forward(x, training=False)
    packed = layer._pack_entry(0, 0)[2]
    assert packed.ctypes.data % ALIGN == 0
    assert all(buf.ctypes.data % ALIGN == 0 for buf in layer._scratch_pool)
    assert y.ctypes.data % ALIGN == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("I,H", [(1, 10), (3, 17), (32, 128)])
def test_packing_by_parts_makes_the_whole_and_leaves_the_rest(isa, dtype, I, H):
    # The seed model packs forward's and backward's parts in separate calls, and the one-call
    # epoch only the parts it reads: the parts together must be every value of the whole, and a
    # part must write nothing outside itself.
    rng = np.random.default_rng(H)
    w_ih = rng.standard_normal((4 * H, I)).astype(dtype)
    w_hh = rng.standard_normal((4 * H, H)).astype(dtype)
    n = _core.packed_size(np.dtype(dtype).name, I, H, _core.isa())
    whole = np.full(n, np.nan, dtype)
    _core.pack_weights(whole, w_ih.ravel(), w_hh.ravel(), I, H, _core.isa())
    assert not np.isnan(whole).any()
    pieced = np.full(n, np.nan, dtype)
    for name, bit in _core.PACK_PARTS.items():
        before = pieced.copy()
        _core.pack_weights(pieced, w_ih.ravel(), w_hh.ravel(), I, H, _core.isa(), bit)
        changed = ~((pieced == before) | (np.isnan(pieced) & np.isnan(before)))
        assert changed.any(), name
        # what a part wrote is the whole's, and no later part writes it again
        np.testing.assert_array_equal(pieced[changed], whole[changed])
        assert np.isnan(before[changed]).all(), name
    np.testing.assert_array_equal(pieced, whole)
    with pytest.raises(ValueError):
        _core.pack_weights(pieced, w_ih.ravel(), w_hh.ravel(), I, H, _core.isa(), 32)
