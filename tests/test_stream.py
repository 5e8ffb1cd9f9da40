"""LSTMLayer.stream: one step at a time equals the whole-sequence forward, to the bit; the
state can be read, saved and restored; reset goes back to the initial state per sample."""

import numpy as np
import pytest

import fastlstm

CASES = [dict(), dict(num_layers=2), dict(num_layers=3, activation="relu"),
         dict(activation="linear", dtype=np.float64), dict(peepholes=True, clip=0.8),
         dict(input_forget=True, num_layers=2, dtype=np.float64)]


def _layer(kwargs, I=5, H=7):
    layer = fastlstm.LSTMLayer(I, H, seed=3, **kwargs)
    if layer.peepholes:  # non-zero peepholes, so that they matter
        for name, value in layer.parameters():
            if name.startswith("peephole"):
                value[...] = np.linspace(-0.5, 0.5, value.size)
    return layer


@pytest.mark.parametrize("kwargs", CASES, ids=[str(k) for k in CASES])
@pytest.mark.parametrize("B", [1, 4])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_steps_equal_the_whole_sequence_forward_bit_for_bit(isa, threads, kwargs, B,
                                                            n_threads):
    threads(n_threads)
    layer = _layer(kwargs)
    x = np.random.default_rng(0).standard_normal((9, B, 5)).astype(layer.dtype)
    y, (h_n, c_n) = layer.forward(x, training=False)
    stream = layer.stream(batch_size=B)
    for t in range(9):
        out = stream.step(x[t, 0] if B == 1 and t % 2 else x[t])  # (I,) for batch 1 too
        np.testing.assert_array_equal(out.reshape(B, -1), y[t])
    h, c = stream.state
    np.testing.assert_array_equal(h, h_n)
    np.testing.assert_array_equal(c, c_n)


def test_initial_state_save_and_resume():
    layer = _layer(dict(num_layers=2, dtype=np.float64))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((10, 3, 5))
    h0, c0 = rng.standard_normal((2, 2, 3, 7))
    y, _ = layer.forward(x, (h0, c0), training=False)
    stream = layer.stream(3, state=(h0, c0))
    for t in range(4):
        stream.step(x[t])
    saved = stream.state
    kept = [a.copy() for a in saved]
    resumed = layer.stream(3)
    resumed.state = saved
    for t in range(4, 10):
        np.testing.assert_array_equal(resumed.step(x[t]), y[t])
    # a state read is a copy, and assigning one copies it: stepping either stream on changes
    # neither the saved arrays
    stream.step(x[4])
    for a, b in zip(saved, kept):
        np.testing.assert_array_equal(a, b)


def test_reset_goes_back_to_the_initial_state_per_sample():
    layer = _layer(dict(num_layers=2, dtype=np.float64))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 2, 5))
    h0, c0 = rng.standard_normal((2, 2, 2, 7))
    stream = layer.stream(2, state=(h0, c0))
    outs = []
    for t in range(8):
        if t == 3:
            stream.reset(np.array([True, False]))
        outs.append(stream.step(x[t]).copy())
    outs = np.array(outs)
    whole, _ = layer.forward(x, (h0, c0), training=False)
    np.testing.assert_array_equal(outs[:, 1], whole[:, 1])       # sample 1 never reset
    np.testing.assert_array_equal(outs[:3, 0], whole[:3, 0])
    again, _ = layer.forward(x[3:, :1], (h0[:, :1], c0[:, :1]), training=False)
    np.testing.assert_array_equal(outs[3:, 0], again[:, 0])      # sample 0 from its start
    stream.reset()
    np.testing.assert_array_equal(stream.state[0], h0)
    np.testing.assert_array_equal(stream.state[1], c0)


def test_the_stream_keeps_the_weights_it_was_made_with():
    layer = _layer(dict())
    x = np.random.default_rng(3).standard_normal((4, 1, 5)).astype(np.float32)
    y, _ = layer.forward(x, training=False)
    stream = layer.stream()
    for _, value in layer.parameters():
        value *= 2
    for t in range(4):
        np.testing.assert_array_equal(stream.step(x[t]), y[t])


def test_the_output_is_the_streams_buffer():
    layer = _layer(dict())
    stream = layer.stream(2)
    a = stream.step(np.ones((2, 5), np.float32))
    first = a.copy()
    b = stream.step(np.zeros((2, 5), np.float32))
    assert np.shares_memory(a, b) and not np.array_equal(a, first)


@pytest.mark.parametrize("make, call, match", [
    (dict(bidirectional=True), None, "bidirectional"),
    (dict(reverse=True), None, "reverse"),
    (dict(), lambda s: s.step(np.zeros((2, 5))), r"x_t: expected shape \(1, 5\)"),
    (dict(), lambda s: s.step(np.zeros(4)), "x_t"),
    (dict(), lambda s: s.reset(np.array([1.0])), "mask"),
    (dict(), lambda s: setattr(s, "state", (np.zeros((1, 1, 7)), np.zeros((2, 1, 7)))),
     r"c: expected shape \(1, 1, 7\)"),
    (dict(), lambda s: setattr(s, "state", np.zeros((1, 1, 7))), "tuple"),
])
def test_bad_use_is_refused_clearly(make, call, match):
    layer = _layer(make)
    with pytest.raises((ValueError, TypeError), match=match):
        stream = layer.stream()
        call(stream)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_stream_large_enough_for_a_team_equals_forward(isa, threads, dtype):
    threads(2)
    layer = fastlstm.LSTMLayer(256, 256, num_layers=2, dtype=dtype, seed=4)  # 512 Ki weights
    x = np.random.default_rng(5).standard_normal((6, 1, 256)).astype(dtype)
    y, (h_n, c_n) = layer.forward(x, training=False)
    stream = layer.stream()
    for t in range(6):
        np.testing.assert_array_equal(stream.step(x[t, 0]), y[t, 0])
    np.testing.assert_array_equal(stream.state[1], c_n)
