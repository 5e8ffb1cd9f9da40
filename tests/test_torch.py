"""fastlstm.torch: the nn.LSTM drop-in against torch.nn.LSTM (outputs, states, every gradient),
gradcheck and opcheck of its operators, replace_lstm, and (slow) torch.compile and a
two-process DistributedDataParallel run against one process on the combined batches."""

import copy
import os
import pickle
import socket
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import fastlstm  # noqa: E402
import fastlstm.torch as ft  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=2e-4, atol=2e-5)}


def _pair(*args, seed=0, **kwargs):
    """nn.LSTM and fastlstm.torch.LSTM made after the same seed: the same initial draws."""
    torch.manual_seed(seed)
    ref = torch.nn.LSTM(*args, **kwargs)
    torch.manual_seed(seed)
    ours = ft.LSTM(*args, **kwargs)
    return ref, ours


def _run(module, x, hx, loss_of):
    """Outputs and every gradient (inputs, states, parameters) of loss_of(module(x, hx))."""
    leaves = [x] + (list(hx) if hx is not None else [])
    for t in leaves:
        t.grad = None
    module.zero_grad()
    out, (h, c) = module(x, hx)
    data = out.data if hasattr(out, "batch_sizes") else out
    loss_of(data, h, c).backward()
    return [data.detach(), h.detach(), c.detach()] + [t.grad.clone() for t in leaves] + \
        [p.grad.clone() for p in module.parameters()]


def _loss(y, h, c):
    return y.sin().sum() + (h * h).sum() + c.cos().sum()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("L, bi", [(1, False), (2, False), (1, True), (2, True)])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_matches_nn_lstm(dtype, L, bi, batch_first, with_state):
    ref, ours = _pair(3, 5, L, bidirectional=bi, batch_first=batch_first, dtype=dtype)
    for (n1, a), (n2, b) in zip(ref.state_dict().items(), ours.state_dict().items()):
        assert n1 == n2 and torch.equal(a, b), n1
    D, B, T = 2 if bi else 1, 4, 6
    x = torch.randn((B, T, 3) if batch_first else (T, B, 3), dtype=dtype, requires_grad=True)
    hx = None
    if with_state:
        hx = tuple(torch.randn(L * D, B, 5, dtype=dtype, requires_grad=True) for _ in range(2))
    for a, b in zip(_run(ref, x, hx, _loss), _run(ours, x, hx, _loss)):
        torch.testing.assert_close(b, a, **TOL[dtype])


LOSSES = {"y": lambda y, h, c: y.sin().sum(), "h": lambda y, h, c: (h * h).sum(),
          "c": lambda y, h, c: c.cos().sum(), "h[-1]": lambda y, h, c: h[-1].sum()}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("reads", list(LOSSES))
@pytest.mark.parametrize("L, bi", [(1, False), (2, True)])
@pytest.mark.parametrize("x_grad", [False, True])
def test_losses_reading_some_outputs_match_nn_lstm(dtype, reads, L, bi, x_grad):
    """A loss on part of the outputs (the gradients autograd leaves undefined reach the
    kernels as None), with and without a gradient for the input (without, the first layer
    skips its dx product)."""
    ref, ours = _pair(3, 5, L, bidirectional=bi, dtype=dtype)
    x = torch.randn(6, 4, 3, dtype=dtype, requires_grad=x_grad)

    def run(module):
        module.zero_grad()
        x.grad = None
        out, (h, c) = module(x)
        LOSSES[reads](out, h, c).backward()
        return [None if x.grad is None else x.grad.clone()] + \
            [p.grad.clone() for p in module.parameters()]

    a, b = run(ref), run(ours)
    assert (b[0] is None) == (not x_grad)
    for u, v in zip(a, b):
        if u is not None:
            torch.testing.assert_close(v, u, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("L, bi", [(1, False), (2, True)])
def test_packed_sequences_match_nn_lstm(dtype, L, bi):
    ref, ours = _pair(3, 4, L, bidirectional=bi, dtype=dtype, seed=1)
    D, B, T = 2 if bi else 1, 5, 7
    x = torch.randn(T, B, 3, dtype=dtype, requires_grad=True)
    hx = tuple(torch.randn(L * D, B, 4, dtype=dtype, requires_grad=True) for _ in range(2))
    lengths = torch.tensor([3, 7, 1, 5, 7])
    results = []
    for m in (ref, ours):
        for t in (x, *hx):
            t.grad = None
        m.zero_grad()
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, (h, c) = m(packed, hx)
        assert torch.equal(out.batch_sizes, packed.batch_sizes)
        assert torch.equal(out.sorted_indices, packed.sorted_indices)
        _loss(out.data, h, c).backward()
        results.append([out.data.detach(), h.detach(), c.detach(), x.grad.clone(),
                        hx[0].grad.clone(), hx[1].grad.clone()] +
                       [p.grad.clone() for p in m.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, **TOL[dtype])


def test_unbatched_inference_mode_and_no_bias():
    ref, ours = _pair(2, 3, 2, bias=False, dtype=torch.float64)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    x = torch.randn(5, 2, dtype=torch.float64)
    hx = (torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64))
    with torch.inference_mode():
        for a, b in zip((ref(x, hx)[0], *ref(x, hx)[1]), (ours(x, hx)[0], *ours(x, hx)[1])):
            torch.testing.assert_close(b, a, **TOL[torch.float64])
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], ref(x)[0], **TOL[torch.float64])


def test_dropout_between_layers():
    ref, ours = _pair(3, 4, 3, dropout=0.5, dtype=torch.float64)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    ref.eval()
    ours.eval()
    torch.testing.assert_close(ours(x)[0], ref(x)[0], **TOL[torch.float64])  # eval: none
    ours.train()
    torch.manual_seed(5)
    a = ours(x)[0]
    torch.manual_seed(5)
    b = ours(x)[0]
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # torch's generator draws the masks
    assert not torch.allclose(a, ours.eval()(x)[0])


def test_state_dict_both_ways_copies_double_and_shared_memory():
    ref, ours = _pair(3, 4, 2, bidirectional=True, dtype=torch.float32, seed=3)
    torch.manual_seed(9)
    fresh = torch.nn.LSTM(3, 4, 2, bidirectional=True)
    ours.load_state_dict(fresh.state_dict())
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], fresh(x)[0], **TOL[torch.float32])
        ref.load_state_dict(ours.state_dict())
        torch.testing.assert_close(ref(x)[0], fresh(x)[0], **TOL[torch.float32])
    # the parameters are the kernels' buffers (no copy per call), before and after .double()
    eng = ours._engines[0]
    assert ours.weight_ih_l0.data_ptr() == eng.layer(torch.float32)._params[
        "weight_ih_l0"].ctypes.data
    ours.double()
    assert ours.weight_ih_l0.dtype == torch.float64
    assert ours.weight_ih_l0.data_ptr() == eng.layer(torch.float64)._params[
        "weight_ih_l0"].ctypes.data
    fresh.double()
    with torch.no_grad():
        torch.testing.assert_close(ours(x.double())[0], fresh(x.double())[0],
                                   **TOL[torch.float64])
        for other in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
            torch.testing.assert_close(other(x.double())[0], ours(x.double())[0], rtol=0, atol=0)
            assert other._engines[0].key != eng.key
    # an optimizer step on the shared parameters reaches the kernels
    opt = torch.optim.SGD(ours.parameters(), lr=0.1)
    ours(x.double())[0].sum().backward()
    fresh.load_state_dict(ours.state_dict())
    opt.step()
    with torch.no_grad():
        for p in fresh.parameters():
            p -= 0.1 * dict(ours.named_parameters())[[n for n, q in fresh.named_parameters()
                                                      if q is p][0]].grad
        torch.testing.assert_close(ours(x.double())[0], fresh(x.double())[0],
                                   **TOL[torch.float64])


def test_other_weights_never_overwrite_the_parameters():
    """functional_call with other weights computes with them, leaves the module's parameters
    alone, and a backward of an earlier call still uses the module's own weights."""
    from torch.func import functional_call
    ref, m = _pair(2, 3, bidirectional=True, dtype=torch.float64, seed=4)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    other = {n: 2 * p.detach() for n, p in m.named_parameters()}
    x = torch.randn(4, 2, 2, dtype=torch.float64)
    y1, _ = m(x)
    y2, _ = functional_call(m, other, (x,))
    y2_ref, _ = functional_call(ref, other, (x,))
    torch.testing.assert_close(y2, y2_ref, **TOL[torch.float64])
    for n, p in m.named_parameters():
        assert torch.equal(p.detach(), before[n]), n
    y1.sum().backward()
    ref(x)[0].sum().backward()
    for (n, p), q in zip(m.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, **TOL[torch.float64], msg=n)
    m.flatten_parameters()  # nn.LSTM's, a no-op here
    assert len(m._flat_weights) == 8
    with pytest.raises(TypeError, match="float16"):
        m.half()(x.half())


@pytest.mark.slow
def test_gradcheck_and_opcheck():
    from torch.func import functional_call
    m = ft.LSTM(2, 3, 2, bidirectional=True, dtype=torch.float64)
    names = [n for n, _ in m.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in m.parameters()]
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 2])

    def f(x, h0, c0, *ps):
        y, (h, c) = functional_call(m, dict(zip(names, ps)), (x, (h0, c0)))
        return y, h, c

    def f_packed(x, h0, c0, *ps):
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        y, (h, c) = functional_call(m, dict(zip(names, ps)), (packed, (h0, c0)))
        return y.data, h, c

    assert torch.autograd.gradcheck(f, (x, h0, c0, *params))
    assert torch.autograd.gradcheck(f_packed, (x, h0, c0, *params))
    w = [p.detach() for p in params[:8]]
    key = m._engines[0].key
    for args in ((x.detach(), h0[:2].detach(), c0[:2].detach(), w, None),
                 (x.detach(), None, None, w, lengths)):
        torch.library.opcheck(torch.ops.fastlstm.lstm_layer.default, args + (key, 2, True))
    xd, h0d, c0d = x.detach(), h0[:2].detach(), c0[:2].detach()
    out = torch.ops.fastlstm.lstm_layer(xd, h0d, c0d, w, None, key, 2, True)
    dy, dh = torch.randn_like(out[0]), torch.randn_like(out[1])
    for grads, need_dx in (((dy, dh, None), True), ((None, dh, None), False)):
        torch.library.opcheck(torch.ops.fastlstm.lstm_layer_backward.default,
                              grads + (xd, h0d, c0d, out[0], out[3:], w, None, key, need_dx))


def test_replace_lstm_swaps_every_lstm_keeping_weights():
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = torch.nn.LSTM(3, 6, batch_first=True)
            self.inner = torch.nn.Sequential(torch.nn.Identity())
            self.inner.add_module("dec", torch.nn.LSTM(6, 4, 2, bidirectional=True,
                                                       batch_first=True))
            self.head = torch.nn.Linear(8, 1)

        def forward(self, x):
            y, _ = self.enc(x)
            y, (h, _) = self.inner.dec(y)
            return self.head(y[:, -1])

    torch.manual_seed(0)
    model = Model().double()
    x = torch.randn(3, 5, 3, dtype=torch.float64)
    expected = model(x)
    swapped = ft.replace_lstm(copy.deepcopy(model))
    assert isinstance(swapped.enc, ft.LSTM) and isinstance(swapped.inner.dec, ft.LSTM)
    assert swapped.inner.dec.bidirectional and swapped.inner.dec.num_layers == 2
    torch.testing.assert_close(swapped(x), expected, **TOL[torch.float64])
    single = ft.replace_lstm(torch.nn.LSTM(2, 2))
    assert isinstance(single, ft.LSTM)


def test_bad_arguments_are_refused_clearly():
    with pytest.raises(ValueError, match="proj_size=2"):
        ft.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="torch.nn.LSTM"):
        ft.LSTM(3, 4, device="cuda")
    with pytest.raises(ValueError, match="dropout"):
        ft.LSTM(3, 4, dropout=1.5)
    with pytest.raises(TypeError, match="dtype"):
        ft.LSTM(3, 4, dtype=torch.float16)
    m = ft.LSTM(3, 4)
    with pytest.raises(ValueError, match="expected 3 features"):
        m(torch.randn(5, 2, 4))
    with pytest.raises(TypeError, match="expected dtype torch.float32"):
        m(torch.randn(5, 2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"h_0 of shape \(1, 2, 4\)"):
        m(torch.randn(5, 2, 3), (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)))
    with pytest.raises(ValueError, match="2 \\(unbatched\\) or 3 dimensions"):
        m(torch.randn(5))
    with pytest.raises(ValueError, match="proj_size"):
        ft.replace_lstm(torch.nn.LSTM(3, 4, proj_size=2))


def test_import_without_torch_says_what_to_install():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import fastlstm\n"
            "try:\n    import fastlstm.torch\nexcept ImportError as e:\n"
            "    assert 'pip install torch' in str(e), e\n    print('ok')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
    run = subprocess.run([sys.executable, "-c", "import sys, fastlstm; "
                          "print('torch' in sys.modules)"], capture_output=True, text=True)
    assert run.stdout.strip() == "False", run.stderr


# --- slow: torch.compile, DistributedDataParallel -----------------------------------------------

class _Net(torch.nn.Module):
    def __init__(self, dtype=torch.float32):
        super().__init__()
        self.lstm = ft.LSTM(3, 8, 2, batch_first=True, dtype=dtype)
        self.head = torch.nn.Linear(8, 1, dtype=dtype)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.head(h[-1])


@pytest.mark.slow
def test_torch_compile_runs_the_op_without_a_graph_break(monkeypatch, tmp_path):
    # a cache of its own: a backward compiled against an earlier fastlstm (another argument
    # list of lstm_layer_backward) was loaded from the shared cache in CI and failed
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    torch.manual_seed(0)
    net = _Net()
    x = torch.randn(5, 6, 3)
    compiled = torch.compile(net, fullgraph=True)  # a graph break would raise
    out = compiled(x)
    out.sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    eager = net(x)
    eager.sum().backward()
    torch.testing.assert_close(out, eager, rtol=0, atol=0)
    for g, p in zip(grads, net.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=1e-6, atol=1e-7)


def _ddp_worker(rank, world, port, path, steps):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    fastlstm.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = DistributedDataParallel(_Net(torch.float64))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = _ddp_data()
    share = slice(rank * len(x) // world, (rank + 1) * len(x) // world)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x[share]), y[share]).backward()
        opt.step()
    if rank == 0:
        torch.save(model.module.state_dict(), path)
    dist.destroy_process_group()


def _ddp_data():
    g = torch.Generator().manual_seed(1)
    return (torch.randn(8, 5, 3, generator=g, dtype=torch.float64),
            torch.randn(8, 1, generator=g, dtype=torch.float64))


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process_on_the_combined_batches(tmp_path):
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "ddp.pt"
    steps = 3
    mp.spawn(_ddp_worker, args=(2, port, str(path), steps), nprocs=2, join=True)
    torch.manual_seed(0)
    single = _Net(torch.float64)
    opt = torch.optim.SGD(single.parameters(), lr=0.1, momentum=0.9)
    x, y = _ddp_data()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(single(x), y).backward()
        opt.step()
    trained = torch.load(path)
    torch.manual_seed(0)
    initial = _Net(torch.float64).state_dict()
    for name, value in single.state_dict().items():
        torch.testing.assert_close(trained[name], value, rtol=1e-10, atol=1e-12, msg=name)
        assert not torch.equal(value, initial[name]), name  # the steps changed every weight
