"""LSTMLayer with lengths= (variable-length batches) and reset= (restarts inside a sequence).

Independent paths: torch.nn.utils.rnn.pack_padded_sequence (outputs, h_n, c_n, every gradient),
each sequence run alone on its own steps through the padded kernels, and for reset the segments
run one by one.
"""

import numpy as np
import pytest

import fastlstm
from fastlstm import _core

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402


def _tol(dtype):
    return dict(rtol=1e-10, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)


def _pair(I, H, L, bi, dtype, batch_first=False, seed=0):
    torch.manual_seed(seed)
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    m = torch.nn.LSTM(I, H, L, bidirectional=bi, batch_first=batch_first).to(tdt)
    layer = fastlstm.LSTMLayer(I, H, L, bidirectional=bi, batch_first=batch_first, dtype=dtype)
    layer.load_state_dict({k: v.detach().numpy() for k, v in m.state_dict().items()})
    return m, layer


def _padded_nan(x, lengths, batch_first):
    """x with NaN past each length: the kernels must never read those steps."""
    x = x.copy()
    T = x.shape[1] if batch_first else x.shape[0]
    past = np.arange(T)[:, None] >= lengths[None, :]
    if batch_first:
        x[past.T] = np.nan
    else:
        x[past] = np.nan
    return x


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("L, bi", [(1, False), (2, False), (1, True), (2, True)])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_lengths_match_torch_packed_sequences(dtype, L, bi, batch_first, with_state):
    T, B, I, H = 9, 6, 3, 5
    rng = np.random.default_rng(L * 10 + bi)
    lengths = rng.integers(1, T + 1, B)
    lengths[1] = T
    m, layer = _pair(I, H, L, bi, dtype, batch_first)
    D = 2 if bi else 1
    shape = (B, T, I) if batch_first else (T, B, I)
    x = rng.standard_normal(shape).astype(dtype)
    h0 = rng.standard_normal((L * D, B, H)).astype(dtype)
    c0 = rng.standard_normal((L * D, B, H)).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (h0, c0))
    packed = pack_padded_sequence(tx, torch.tensor(lengths), batch_first=batch_first,
                                  enforce_sorted=False)
    out, (hn, cn) = m(packed, (th0, tc0) if with_state else None)
    y, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    gy = rng.standard_normal(tuple(y.shape)).astype(dtype)
    ghn = rng.standard_normal(tuple(hn.shape)).astype(dtype)
    gcn = rng.standard_normal(tuple(cn.shape)).astype(dtype)
    ((y * torch.tensor(gy)).sum() + (hn * torch.tensor(ghn)).sum()
     + (cn * torch.tensor(gcn)).sum()).backward()

    state = (h0, c0) if with_state else None
    yf, (hf, cf) = layer.forward(_padded_nan(x, lengths, batch_first), state, lengths=lengths)
    tol = _tol(dtype)
    np.testing.assert_allclose(yf, y.detach().numpy(), **tol)
    np.testing.assert_allclose(hf, hn.detach().numpy(), **tol)
    np.testing.assert_allclose(cf, cn.detach().numpy(), **tol)
    dx, (dh0, dc0) = layer.backward(gy, (ghn, gcn))
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tol)
    if with_state:
        np.testing.assert_allclose(dh0, th0.grad.numpy(), **tol)
        np.testing.assert_allclose(dc0, tc0.grad.numpy(), **tol)
    for name, p in m.named_parameters():
        np.testing.assert_allclose(layer.grads[name], p.grad.numpy(), err_msg=name, **tol)
    # inference gives the training forward's values
    yi, (hi, ci) = layer.forward(x, state, lengths=lengths, training=False)
    np.testing.assert_array_equal(yi, yf)
    np.testing.assert_array_equal(hi, hf)
    np.testing.assert_array_equal(ci, cf)


@pytest.mark.parametrize("extras", [
    dict(), dict(activation="relu"), dict(peepholes=True), dict(clip=0.7),
    dict(input_forget=True), dict(reverse=True), dict(peepholes=True, bidirectional=True)])
def test_lengths_equal_each_sequence_alone(extras):
    """Every ONNX extra and activation: a ragged batch equals each sequence run on its own
    steps through the padded call, and its gradients are the sum of theirs."""
    T, B, I, H = 8, 5, 4, 6
    rng = np.random.default_rng(3)
    layer = fastlstm.LSTMLayer(I, H, num_layers=2, dtype=np.float64, seed=2, **extras)
    for name, p in layer.parameters():  # peepholes start at zero: give them values
        p[...] = rng.uniform(-0.5, 0.5, p.shape)
    L, D = 2, layer.num_directions
    lengths = np.array([3, 8, 1, 5, 8])
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((L * D, B, H))
    c0 = rng.standard_normal((L * D, B, H))
    gy = rng.standard_normal((T, B, D * H))
    ghn, gcn = rng.standard_normal((2, L * D, B, H))
    y, (hn, cn) = layer.forward(x, (h0, c0), lengths=lengths)
    dx, (dh0, dc0) = layer.backward(gy, (ghn, gcn))
    grads = {k: v.copy() for k, v in layer.grads.items()}
    total = {k: np.zeros_like(v) for k, v in grads.items()}
    for b, n in enumerate(lengths):
        s = slice(b, b + 1)
        yb, (hb, cb) = layer.forward(x[:n, s], (h0[:, s], c0[:, s]))
        np.testing.assert_allclose(y[:n, s], yb, rtol=1e-12, atol=1e-13)
        assert not y[n:, s].any()
        np.testing.assert_allclose(hn[:, s], hb, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(cn[:, s], cb, rtol=1e-12, atol=1e-13)
        dxb, (dh0b, dc0b) = layer.backward(gy[:n, s], (ghn[:, s], gcn[:, s]))
        np.testing.assert_allclose(dx[:n, s], dxb, rtol=1e-11, atol=1e-12)
        assert not dx[n:, s].any()
        np.testing.assert_allclose(dh0[:, s], dh0b, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(dc0[:, s], dc0b, rtol=1e-11, atol=1e-12)
        for k in total:
            total[k] += layer.grads[k]
    for k in total:
        np.testing.assert_allclose(grads[k], total[k], rtol=1e-10, atol=1e-11, err_msg=k)


def test_length_zero_passes_the_state_through():
    T, B, I, H = 5, 3, 2, 4
    rng = np.random.default_rng(1)
    layer = fastlstm.LSTMLayer(I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    lengths = np.array([4, 0, 5])
    x = rng.standard_normal((T, B, I))
    h0, c0 = rng.standard_normal((2, 4, B, H))
    y, (hn, cn) = layer.forward(x, (h0, c0), lengths=lengths)
    assert not y[:, 1].any()
    np.testing.assert_array_equal(hn[:, 1], h0[:, 1])
    np.testing.assert_array_equal(cn[:, 1], c0[:, 1])
    ghn, gcn = rng.standard_normal((2, 4, B, H))
    dx, (dh0, dc0) = layer.backward(np.ones_like(y), (ghn, gcn))
    assert not dx[:, 1].any()
    np.testing.assert_array_equal(dh0[:, 1], ghn[:, 1])
    np.testing.assert_array_equal(dc0[:, 1], gcn[:, 1])
    y0, (h00, c00) = layer.forward(x, (h0, c0), lengths=np.zeros(B, int), training=False)
    assert not y0.any()
    np.testing.assert_array_equal(h00, h0)
    np.testing.assert_array_equal(c00, c0)


def _segments(reset_col, T):
    starts = [0] + [t for t in range(1, T) if reset_col[t]]
    return list(zip(starts, starts[1:] + [T]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("L, bi", [(1, False), (2, False), (2, True)])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_reset_equals_the_segments_run_one_by_one(dtype, L, bi, with_lengths):
    T, B, I, H = 10, 4, 3, 5
    rng = np.random.default_rng(7)
    layer = fastlstm.LSTMLayer(I, H, L, bidirectional=bi, dtype=dtype, seed=4)
    D = layer.num_directions
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0, c0 = rng.standard_normal((2, L * D, B, H)).astype(dtype)
    reset = rng.random((T, B)) < 0.25
    reset[0, 0] = True  # a reset at a sequence's first step changes nothing
    lengths = np.array([10, 6, 9, 3]) if with_lengths else np.full(B, T)
    gy = rng.standard_normal((T, B, D * H)).astype(dtype)
    ghn, gcn = rng.standard_normal((2, L * D, B, H)).astype(dtype)
    y, (hn, cn) = layer.forward(x, (h0, c0), reset=reset,
                                lengths=lengths if with_lengths else None)
    dx, (dh0, dc0) = layer.backward(gy, (ghn, gcn))
    grads = {k: v.copy() for k, v in layer.grads.items()}
    total = {k: np.zeros_like(v) for k, v in grads.items()}
    tol = _tol(dtype)
    for b in range(B):
        s, n = slice(b, b + 1), lengths[b]
        seg = _segments(reset[:n, b], n)
        dh0_sum, dc0_sum = np.zeros_like(dh0[:, s]), np.zeros_like(dc0[:, s])
        # the call's final state: the forward directions' from the last segment, the
        # reverse directions' (odd rows of h_n with bi) from the first
        fwd = np.array([k % D == 0 for k in range(L * D)])
        for i, (t0, t1) in enumerate(seg):
            ends = fwd if i == len(seg) - 1 else np.zeros(L * D, bool)
            if i == 0:
                ends = ends | ~fwd
            ys, (hs, cs) = layer.forward(x[t0:t1, s], (h0[:, s], c0[:, s]))
            np.testing.assert_allclose(y[t0:t1, s], ys, **tol)
            np.testing.assert_allclose(hn[ends, s], hs[ends], **tol)
            np.testing.assert_allclose(cn[ends, s], cs[ends], **tol)
            dstate = (ghn[:, s] * ends[:, None, None], gcn[:, s] * ends[:, None, None])
            dxs, (dh0s, dc0s) = layer.backward(gy[t0:t1, s], dstate)
            np.testing.assert_allclose(dx[t0:t1, s], dxs, **tol)
            dh0_sum += dh0s
            dc0_sum += dc0s
            for k in total:
                total[k] += layer.grads[k]
        np.testing.assert_allclose(dh0[:, s], dh0_sum, **tol)
        np.testing.assert_allclose(dc0[:, s], dc0_sum, **tol)
    for k in total:
        np.testing.assert_allclose(grads[k], total[k], err_msg=k,
                                   **(tol if dtype == np.float64 else dict(rtol=1e-3, atol=1e-4)))
    yi, (hi, ci) = layer.forward(x, (h0, c0), reset=reset, training=False,
                                 lengths=lengths if with_lengths else None)
    np.testing.assert_array_equal(yi, y)
    np.testing.assert_array_equal(ci, cn)


@pytest.mark.parametrize("bi", [False, True])
def test_inference_chunks_carry_ragged_state(monkeypatch, bi):
    """Inference in chunks of a few steps (the bounded scratch of long sequences) gives the
    one-call values, for rows that start or restart inside any chunk."""
    import fastlstm.layer as layer_mod
    T, B, I, H = 23, 5, 3, 4
    rng = np.random.default_rng(5)
    layer = fastlstm.LSTMLayer(I, H, num_layers=2, bidirectional=bi, dtype=np.float64, seed=1)
    D = layer.num_directions
    x = rng.standard_normal((T, B, I))
    h0, c0 = rng.standard_normal((2, 2 * D, B, H))
    lengths = np.array([23, 4, 17, 11, 1])
    reset = rng.random((T, B)) < 0.15
    whole = layer.forward(x, (h0, c0), lengths=lengths, reset=reset, training=False)
    monkeypatch.setattr(layer_mod, "_INFERENCE_CHUNK_ELEMENTS", 3 * B * 4 * H)  # 3 steps
    chunked = layer.forward(x, (h0, c0), lengths=lengths, reset=reset, training=False)
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_array_equal(chunked[1][0], whole[1][0])
    np.testing.assert_array_equal(chunked[1][1], whole[1][1])


@pytest.mark.skipif(not _core.openmp(), reason="built without OpenMP")
@pytest.mark.parametrize("split", [0, 1, 2, 3])
def test_ragged_results_do_not_depend_on_threads_or_split(split):
    T, B, I, H = 30, 40, 16, 40
    rng = np.random.default_rng(2)
    layer = fastlstm.LSTMLayer(I, H, bidirectional=True, dtype=np.float32, seed=3)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    lengths = rng.integers(0, T + 1, B)
    reset = rng.random((T, B)) < 0.1
    gy = rng.standard_normal((T, B, 2 * H)).astype(np.float32)

    def run(threads):
        before = fastlstm.get_num_threads()
        fastlstm.set_num_threads(threads)
        try:
            layer._split = split if threads > 1 else 0
            y, (h, c) = layer.forward(x, lengths=lengths, reset=reset)
            dx, (dh0, dc0) = layer.backward(gy)
            return [y, h, c, dx, dh0, dc0] + [g.copy() for g in layer.grads.values()]
        finally:
            fastlstm.set_num_threads(before)
            layer._split = 0

    for a, b in zip(run(1), run(2)):
        np.testing.assert_array_equal(a, b)


def test_bad_lengths_and_reset_are_refused_clearly():
    layer = fastlstm.LSTMLayer(2, 3, dtype=np.float64)
    x = np.zeros((4, 2, 2))
    with pytest.raises(ValueError, match=r"lengths: expected shape \(2,\)"):
        layer.forward(x, lengths=[1, 2, 3])
    with pytest.raises(ValueError, match=r"lengths: expected values in \[0, 4\]"):
        layer.forward(x, lengths=[1, 5])
    with pytest.raises(ValueError, match=r"lengths: expected values in \[0, 4\]"):
        layer.forward(x, lengths=[-1, 2])
    with pytest.raises(TypeError, match="lengths must be integers"):
        layer.forward(x, lengths=[1.5, 2.0])
    with pytest.raises(TypeError, match="lengths must be integers"):
        layer.forward(x, lengths=[True, False])
    with pytest.raises(ValueError, match=r"reset: expected shape \(4, 2\) \(T, B\)"):
        layer.forward(x, reset=np.zeros((2, 4), bool))
    with pytest.raises(TypeError, match="reset must be booleans"):
        layer.forward(x, reset=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="reset: expected booleans"):
        layer.forward(x, reset=np.full((4, 2), 2))
    bf = fastlstm.LSTMLayer(2, 3, batch_first=True, dtype=np.float64)
    with pytest.raises(ValueError, match=r"reset: expected shape \(2, 4\) \(B, T\)"):
        bf.forward(np.zeros((2, 4, 2)), reset=np.zeros((4, 2), bool))


@pytest.mark.parametrize("T,lengths", [(5, [3, 5, 0, 5, 1]), (4, [4, 4, 4]), (3, [0, 0]),
                                       (6, [1, 2, 3, 4, 5, 6]), (1, [1])])
def test_the_step_plan_equals_its_numpy_definition(T, lengths):
    # stable sort longest first; batch_sizes[t] = sequences longer than t; offsets their cumsum;
    # index[off[t] + r] = t B + order[r]
    lengths = np.array(lengths, np.int64)
    B = len(lengths)
    order, srt, bs, off, index = _core.steps_of_lengths(lengths, T)
    want_order = np.argsort(-lengths, kind="stable")
    np.testing.assert_array_equal(want_order if order is None else order, want_order)
    assert (order is None) == bool((want_order == np.arange(B)).all())
    np.testing.assert_array_equal(srt, lengths[want_order])
    counts = (srt[None, :] > np.arange(T)[:, None]).sum(axis=1)
    np.testing.assert_array_equal(bs, counts)
    np.testing.assert_array_equal(off, np.concatenate(([0], np.cumsum(counts))))
    step = np.repeat(np.arange(T), counts)
    np.testing.assert_array_equal(index, step * B + want_order[np.arange(off[-1]) - off[step]])
    with pytest.raises(ValueError):
        _core.steps_of_lengths(np.array([T + 1], np.int64), T)


def test_backward_scratch_follows_the_real_rows():
    # dG's panels hold the rows of the steps only: with lengths the scratch shrinks with them
    T, B, I, H = 20, 8, 3, 16
    full = _core.bwd_scratch_size("float32", T, B, I, H)
    assert _core.bwd_scratch_size("float32", T, B, I, H, None, T * B) == full
    half = _core.bwd_scratch_size("float32", T, B, I, H, None, T * B // 2)
    assert half < full
    with pytest.raises(ValueError):
        _core.bwd_scratch_size("float32", T, B, I, H, None, T * B + 1)
    # and a backward with lengths runs on exactly that much (no pool buffer to hide behind)
    rng = np.random.default_rng(3)
    layer = fastlstm.LSTMLayer(I, H, seed=0)
    lengths = rng.integers(0, T + 1, B)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    layer._scratch_pool.clear()
    y, _ = layer.forward(x, lengths=lengths)
    dx, _ = layer.backward(np.ones_like(y))
    assert np.isfinite(dx).all() and (dx[lengths[None, :] <= np.arange(T)[:, None]] == 0).all()
