"""``fastlstm.torch.LSTM`` (``torch.nn.LSTM``'s constructor, parameters, forward and
gradients on fastlstm's kernels) and ``replace_lstm``."""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from .._names import suffix
from ._ops import Engine, run_layer

__all__ = ["LSTM", "replace_lstm"]


def _cpu_only(what, device):
    raise ValueError(f"{what} is on {device}: fastlstm.torch runs on the CPU only; use "
                     "torch.nn.LSTM for CUDA and other devices")


class LSTM(nn.Module):
    """A drop-in for ``torch.nn.LSTM`` on fastlstm's CPU kernels.

    The constructor, the parameters (names, shapes, initialisation: the same draws of torch's
    random generator as ``nn.LSTM``, so ``load_state_dict`` works both ways), ``forward(input,
    hx=None) -> (output, (h_n, c_n))`` (batched or unbatched, ``batch_first``, a
    ``PackedSequence``) and every gradient are ``nn.LSTM``'s. ``dropout`` applies between
    layers in training, as there. ``proj_size`` other than 0 is refused. CPU tensors only.

    Each layer is one call of the ``fastlstm::lstm_layer`` operator (``torch.library``), which
    ``torch.compile`` traces without a graph break and ``torch.autograd.gradcheck`` checks;
    its backward is the ``fastlstm::lstm_layer_backward`` operator. The parameters share
    memory with the kernels' own buffers (no copy per call) as long as they are the tensors
    the module made; other tensors (after ``.double()``, or in ``torch.func.functional_call``)
    are copied in each call. Threads: ``fastlstm.set_num_threads``.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        for name, value, low in (("input_size", input_size, 1), ("hidden_size", hidden_size, 1),
                                 ("num_layers", num_layers, 1), ("proj_size", proj_size, 0)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
        if proj_size:
            raise ValueError(f"proj_size={proj_size}: fastlstm.torch.LSTM has no projections; "
                             "use torch.nn.LSTM for proj_size > 0")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) \
                or not 0 <= dropout <= 1:
            raise ValueError(f"dropout: expected a number in [0, 1], got {dropout!r}")
        if device is not None and torch.device(device).type != "cpu":
            _cpu_only("device", torch.device(device))
        dtype = torch.get_default_dtype() if dtype is None else dtype
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers, self.bias = int(num_layers), bool(bias)
        self.batch_first, self.dropout = bool(batch_first), float(dropout)
        self.bidirectional, self.proj_size, self.mode = bool(bidirectional), 0, "LSTM"
        D = 2 if self.bidirectional else 1
        self._engines = [Engine(self.input_size if l == 0 else D * self.hidden_size,
                                self.hidden_size, self.bidirectional, self.bias)
                         for l in range(self.num_layers)]
        self._flat_weights_names = []
        for l, eng in enumerate(self._engines):
            for name in eng.names():
                full = name.replace("_l0", f"_l{l}")
                shape = eng.layer(dtype)._params[name].shape
                self.register_parameter(full, nn.Parameter(torch.empty(shape, dtype=dtype)))
                self._flat_weights_names.append(full)
        self._bind()
        self.reset_parameters()

    def _bind(self):
        """Make every CPU float32/float64 parameter a view of its engine's buffer (values
        kept): then a call copies no weights. Others are left alone (and copied per call)."""
        per = len(self._flat_weights_names) // self.num_layers
        for l, eng in enumerate(self._engines):
            for name, full in zip(eng.names(), self._flat_weights_names[l * per:(l + 1) * per]):
                p = getattr(self, full)
                if p.device.type != "cpu" or p.dtype not in (torch.float32, torch.float64):
                    continue
                view = eng.layer(p.dtype)._params[name]
                if p.data_ptr() != view.ctypes.data:
                    view[...] = p.detach().numpy()
                    p.data = torch.from_numpy(view)

    def _apply(self, fn, *args, **kwargs):
        # .double(), .float(), .to(...) give the parameters new tensors: bind those again
        out = super()._apply(fn, *args, **kwargs)
        self._bind()
        return out

    def reset_parameters(self):
        """``nn.LSTM``'s: every parameter uniform in +-1/sqrt(hidden_size), in its order."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for w in self.parameters():
                w.uniform_(-stdv, stdv)

    def flatten_parameters(self):
        """``nn.LSTM``'s (a cuDNN matter): nothing to do here; kept so models that call it
        run unchanged."""

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        D = 2 if self.bidirectional else 1
        per = 4 if self.bias else 2
        ws = [getattr(self, n) for n in self._flat_weights_names]
        return [ws[k * per:(k + 1) * per] for k in range(self.num_layers * D)]

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        for name, default in (("num_layers", 1), ("bias", True), ("batch_first", False),
                              ("dropout", 0.0), ("bidirectional", False)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s

    def __setstate__(self, state):
        # a copy (deepcopy, pickle) has engines of its own (Engine.__setstate__): bind to them
        super().__setstate__(state)
        self._bind()

    def forward(self, input, hx=None):
        packed = isinstance(input, PackedSequence)
        lengths = None
        if packed:
            sequence = input
            x, lengths = pad_packed_sequence(sequence)  # (T, B, I), the caller's order
            batched = True
        else:
            if not isinstance(input, torch.Tensor):
                raise TypeError(f"input: expected a Tensor or a PackedSequence, got "
                                f"{type(input).__name__}")
            batched = input.dim() == 3
            if input.dim() not in (2, 3):
                raise ValueError(f"input: expected 2 (unbatched) or 3 dimensions, got shape "
                                 f"{tuple(input.shape)}")
            x = input if batched else input.unsqueeze(1)
            if batched and self.batch_first:
                x = x.transpose(0, 1)
        if x.device.type != "cpu":
            _cpu_only("input", x.device)
        w0 = getattr(self, self._flat_weights_names[0])
        if x.dtype != w0.dtype:
            raise TypeError(f"input: expected dtype {w0.dtype} (the parameters'), got {x.dtype}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input: expected {self.input_size} features in the last axis, "
                             f"got shape {tuple(input.data.shape if packed else input.shape)}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"input: expected at least one step and one sequence, got shape "
                             f"{tuple(x.shape)}")
        D, H, L = 2 if self.bidirectional else 1, self.hidden_size, self.num_layers
        B = x.shape[1]
        h0 = c0 = None
        if hx is not None:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("hx: expected a tuple (h_0, c_0) or None")
            h0, c0 = hx
            want = (L * D, B, H) if batched else (L * D, H)
            for name, t in (("h_0", h0), ("c_0", c0)):
                if not isinstance(t, torch.Tensor) or tuple(t.shape) != want:
                    raise ValueError(f"hx: expected {name} of shape {want}, got "
                                     f"{tuple(t.shape) if isinstance(t, torch.Tensor) else t!r}")
                if t.device.type != "cpu":
                    _cpu_only(name, t.device)
                if t.dtype != x.dtype:
                    raise TypeError(f"hx: expected {name} of dtype {x.dtype}, got {t.dtype}")
            if not batched:
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        grad = torch.is_grad_enabled()
        inp = x.contiguous()
        hs, cs = [], []
        per = len(self._flat_weights_names) // L
        for l, eng in enumerate(self._engines):
            weights = [getattr(self, n) for n in self._flat_weights_names[l * per:(l + 1) * per]]
            h0_l = None if h0 is None else h0[l * D:(l + 1) * D].contiguous()
            c0_l = None if c0 is None else c0[l * D:(l + 1) * D].contiguous()
            out = run_layer(inp, h0_l, c0_l, weights, lengths, eng.key, D, grad)
            y = out[0]
            hs.append(out[1])
            cs.append(out[2])
            if self.dropout and self.training and l < L - 1:
                y = nn.functional.dropout(y, self.dropout, training=True)
            inp = y
        h_n, c_n = torch.cat(hs), torch.cat(cs)
        if packed:
            bs = sequence.batch_sizes
            steps = torch.repeat_interleave(torch.arange(len(bs)), bs)
            starts = torch.cumsum(bs, 0) - bs
            j = torch.arange(len(steps)) - starts[steps]
            cols = j if sequence.sorted_indices is None else sequence.sorted_indices[j]
            output = PackedSequence(inp[steps, cols], bs, sequence.sorted_indices,
                                    sequence.unsorted_indices)
            return output, (h_n, c_n)
        output = inp
        if not batched:
            return output.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        if self.batch_first:
            output = output.transpose(0, 1)
        return output, (h_n, c_n)


def replace_lstm(module):
    """Swap every ``torch.nn.LSTM`` inside ``module`` (and ``module`` itself, if it is one)
    for a :class:`LSTM` with the same configuration, weights and training mode; returns the
    model (the new layer when ``module`` itself was an ``nn.LSTM``). ``proj_size`` > 0 and
    layers on other devices than the CPU are refused."""

    def convert(old):
        w = next(old.parameters())
        if w.device.type != "cpu":
            _cpu_only("an nn.LSTM", w.device)
        new = LSTM(old.input_size, old.hidden_size, old.num_layers, old.bias, old.batch_first,
                   old.dropout, old.bidirectional, old.proj_size, dtype=w.dtype)
        new.load_state_dict(old.state_dict())
        new.train(old.training)
        return new

    if isinstance(module, nn.LSTM):
        return convert(module)
    for name, child in list(module.named_children()):
        if isinstance(child, nn.LSTM):
            setattr(module, name, convert(child))
        else:
            replace_lstm(child)
    return module
