"""The two PyTorch operators behind ``fastlstm.torch.LSTM``: one layer (all its directions)
forward, and its backward, registered with ``torch.library.custom_op`` so that autograd,
``torch.compile`` (through their fake implementations) and ``gradcheck`` see them as ops.

Each module layer owns an engine: one-layer :class:`fastlstm.LSTMLayer` objects (one per
dtype) whose parameter buffer the module's ``nn.Parameter`` objects share, so a call copies no
weights unless the tensors it is given live elsewhere (after ``module.double()``, or
``torch.func.functional_call``); then they are copied in. The operators take the engine's key,
an int; everything a backward needs (the gates and cell states of every step) is an output of
the forward, kept by autograd, so a module may be called any number of times before a
backward.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import List, Optional

import numpy as np
import torch

from .._names import param_names
from .._records import DirectionRecord, LayerForward, LayerRecord
from .._validation import check_lengths
from ..layer import LSTMLayer, _StepPlan

_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
_ENGINES = weakref.WeakValueDictionary()
_KEYS = itertools.count(1)


class Engine:
    """The fastlstm side of one module layer: an ``LSTMLayer(num_layers=1)`` per dtype."""

    def __init__(self, input_size, hidden_size, bidirectional, bias):
        self.input_size, self.hidden_size = input_size, hidden_size
        self.bidirectional, self.bias = bidirectional, bias
        self.layers = {}
        self._bound_views = {}  # dtype -> (buffer, [(name, shape, address)]) of the bound layer
        self._names = tuple(n for n in param_names(1, bidirectional, False)
                            if bias or not n.startswith("bias"))
        self.lock = threading.Lock()
        self.key = next(_KEYS)
        _ENGINES[self.key] = self

    def __getstate__(self):
        # a copy (deepcopy, pickle) of a module gets engines of its own, with their own keys;
        # the module binds its parameters into them again
        return (self.input_size, self.hidden_size, self.bidirectional, self.bias)

    def __setstate__(self, state):
        self.__init__(*state)

    def layer(self, dtype, bound=True):
        """The layer for dtype: the one whose buffer the module's parameters are (bound), or
        the one that other weights are copied into for a call (never the parameters')."""
        if dtype not in _DTYPES:
            raise TypeError(f"fastlstm.torch: dtype {dtype} is not supported (float32 or "
                            "float64)")
        layer = self.layers.get((dtype, bound))
        if layer is None:
            layer = LSTMLayer(self.input_size, self.hidden_size, 1,
                              bidirectional=self.bidirectional, dtype=_DTYPES[dtype])
            for _, p in layer.parameters():
                p[...] = 0
            self.layers[(dtype, bound)] = layer
        return layer

    def names(self):
        """The parameter names of one layer, in the order the operators take the weights."""
        return self._names

    def bound_views(self, dtype):
        """(name, shape, address) of each parameter of the bound layer for dtype, in the
        operators' order: what a call's weights are compared with (kept while the layer's
        buffer is the same object; reading an array's address costs microseconds)."""
        bound = self.layer(dtype)
        kept = self._bound_views.get(dtype)
        if kept is None or kept[0] is not bound._store.data:
            views = [(n, bound._params[n].shape, bound._params[n].ctypes.data)
                     for n in self._names]
            kept = self._bound_views[dtype] = (bound._store.data, views)
        return bound, kept[1]


def _engine(key):
    engine = _ENGINES.get(key)
    if engine is None:
        raise RuntimeError(f"fastlstm.torch: engine {key} no longer exists (its module was "
                           "deleted)")
    return engine


def _loaded(engine, dtype, weights):
    """A layer of the engine computing with these weights: the bound one when they are the
    module's own parameters (its buffer: nothing to copy), else the engine's other layer with
    the weights copied in (so the module's parameters are never written)."""
    bound, views = engine.bound_views(dtype)
    if len(weights) != len(views):
        names = list(engine.names())
        raise ValueError(f"fastlstm.torch: {len(weights)} weights for the {len(names)} "
                         f"parameters {names}")
    own = True
    for (name, shape, address), w in zip(views, weights):
        if tuple(w.shape) != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {tuple(w.shape)}")
        if w.dtype != dtype:
            raise TypeError(f"{name}: expected dtype {dtype}, got {w.dtype} (every weight "
                            "and the input need one dtype)")
        own = own and w.data_ptr() == address and w.is_contiguous()
    if own:
        return bound
    layer = engine.layer(dtype, bound=False)
    for (name, _, _), w in zip(views, weights):
        np.copyto(layer._params[name], w.detach().numpy())
    return layer


def _np(t):
    return None if t is None else t.detach().contiguous().numpy()


def _forward_impl(x, h0, c0, weights, lengths, engine, directions, training):
    eng = _engine(engine)
    with eng.lock:
        layer = _loaded(eng, x.dtype, weights)
        state = None if h0 is None else (_np(h0), _np(c0))
        lens = None if lengths is None else lengths.numpy()
        y, (h, c), rec = layer._run(_np(x), state, lens, None, training)
    out = [torch.from_numpy(y), torch.from_numpy(h), torch.from_numpy(c)]
    if training:
        H = layer.hidden_size
        for dr in rec.layers[0].directions:
            out += [torch.from_numpy(dr.gates.reshape(-1, 4 * H)),
                    torch.from_numpy(dr.cell.reshape(-1, H))]
    return out


@torch.library.custom_op("fastlstm::lstm_layer", mutates_args=(), device_types="cpu")
def lstm_layer(x: torch.Tensor, h0: Optional[torch.Tensor], c0: Optional[torch.Tensor],
               weights: List[torch.Tensor], lengths: Optional[torch.Tensor], engine: int,
               directions: int, training: bool) -> List[torch.Tensor]:
    """One layer, time major: x (T, B, I), h0, c0 (D, B, H) or None -> [y (T, B, D*H),
    h_n (D, B, H), c_n (D, B, H)] and, in training, each direction's gates (rows, 4H) and
    cell states (rows, H) for the backward (rows: T*B, or the sum of the lengths)."""
    return _forward_impl(x, h0, c0, weights, lengths, engine, directions, training)


@lstm_layer.register_fake
def _lstm_layer_fake(x, h0, c0, weights, lengths, engine, directions, training):
    T, B = x.shape[0], x.shape[1]
    H = weights[1].shape[1]
    out = [x.new_empty(T, B, directions * H), x.new_empty(directions, B, H),
           x.new_empty(directions, B, H)]
    if training:
        rows = T * B if lengths is None else torch.library.get_ctx().new_dynamic_size()
        for _ in range(directions):
            out += [x.new_empty(rows, 4 * H), x.new_empty(rows, H)]
    return out


def _backward_impl(dy, dh_n, dc_n, x, h0, c0, y, saved, weights, lengths, engine, need_dx):
    eng = _engine(engine)
    T, B = x.shape[0], x.shape[1]
    with eng.lock:
        layer = _loaded(eng, x.dtype, weights)
        lens = None if lengths is None else check_lengths(lengths.numpy(), T, B)
        plan = _StepPlan(T, B, lens, None)
        h0s, c0s = plan.sort_state(_np(h0)), plan.sort_state(_np(c0))
        dirs = []
        for d in range(layer.num_directions):
            isa, packed = layer._packed(0, d)
            dirs.append(DirectionRecord(
                plan.steps_view(_np(saved[2 * d])), plan.steps_view(_np(saved[2 * d + 1])),
                None if h0s is None else h0s[d].reshape(-1),
                None if c0s is None else c0s[d].reshape(-1), isa, packed))
        rec = LayerForward((LayerRecord(plan.steps_view(plan.pack(_np(x))),
                                        plan.steps_view(plan.pack(_np(y))), tuple(dirs)),),
                           T, B, plan)
        dx, (dh0, dc0) = layer._backward_of(rec, _np(dy), (_np(dh_n), _np(dc_n)), need_dx)
        grads = [torch.from_numpy(layer.grads[n].copy()) for n in eng.names()]
    dx = x.new_empty(0) if dx is None else torch.from_numpy(dx)
    return [dx, torch.from_numpy(dh0), torch.from_numpy(dc0)] + grads


@torch.library.custom_op("fastlstm::lstm_layer_backward", mutates_args=(), device_types="cpu")
def lstm_layer_backward(dy: Optional[torch.Tensor], dh_n: Optional[torch.Tensor],
                        dc_n: Optional[torch.Tensor], x: torch.Tensor,
                        h0: Optional[torch.Tensor], c0: Optional[torch.Tensor], y: torch.Tensor,
                        saved: List[torch.Tensor], weights: List[torch.Tensor],
                        lengths: Optional[torch.Tensor], engine: int,
                        need_dx: bool) -> List[torch.Tensor]:
    """The gradients of lstm_layer: [dx, dh0, dc0] and one per weight, in weights' order. A
    gradient given as None is zeros (not read); without need_dx, dx is an empty tensor (its
    product is skipped)."""
    return _backward_impl(dy, dh_n, dc_n, x, h0, c0, y, saved, weights, lengths, engine,
                          need_dx)


@lstm_layer_backward.register_fake
def _lstm_layer_backward_fake(dy, dh_n, dc_n, x, h0, c0, y, saved, weights, lengths, engine,
                              need_dx):
    H = weights[1].shape[1]
    state = (y.shape[2] // H, x.shape[1], H)
    return [torch.empty_like(x) if need_dx else x.new_empty(0), x.new_empty(state),
            x.new_empty(state)] + [torch.empty_like(w) for w in weights]


def _setup_context(ctx, inputs, output):
    x, h0, c0, weights, lengths, engine, directions, training = inputs
    ctx.training, ctx.engine = training, engine
    ctx.has_state = h0 is not None
    ctx.n_weights = len(weights)
    saved = list(output[3:]) if training else []
    ctx.n_saved = len(saved)
    ctx.save_for_backward(x, h0, c0, output[0], lengths, *saved, *weights)


def _gradients(ctx, grads, backward):
    if not ctx.training:
        raise RuntimeError("fastlstm.torch: this forward ran without gradients "
                           "(torch.is_grad_enabled() was False); run it with gradients enabled")
    x, h0, c0, y, lengths, *rest = ctx.saved_tensors
    saved, weights = rest[:ctx.n_saved], rest[ctx.n_saved:]
    # a gradient autograd did not produce (an output the loss never read) stays None: the
    # kernels read it as zeros without being handed a buffer of them; dx only when x needs it
    need_dx = bool(ctx.needs_input_grad[0])
    out = backward(grads[0], grads[1], grads[2], x, h0, c0, y, list(saved), list(weights),
                   lengths, ctx.engine, need_dx)
    dx, dh0, dc0, dw = out[0] if need_dx else None, out[1], out[2], out[3:]
    return dx, dh0 if ctx.has_state else None, dc0 if ctx.has_state else None, list(dw)


def _backward(ctx, grads):
    return _gradients(ctx, grads, torch.ops.fastlstm.lstm_layer_backward) + \
        (None, None, None, None)


lstm_layer.register_autograd(_backward, setup_context=_setup_context)


class _Eager(torch.autograd.Function):
    """The same forward and backward outside torch.compile, as an autograd Function: the
    operators' dispatch (several Python layers a call) is skipped, the work is the same
    functions'. Weights come flattened (a Function's inputs must be tensors to be seen)."""

    @staticmethod
    def forward(ctx, x, h0, c0, lengths, engine, directions, training, *weights):
        out = _forward_impl(x, h0, c0, list(weights), lengths, engine, directions, training)
        _setup_context(ctx, (x, h0, c0, weights, lengths, engine, directions, training), out)
        ctx.set_materialize_grads(False)  # outputs the loss never read: None, not zeros
        for t in out[3:]:
            ctx.mark_non_differentiable(t)
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads):
        dx, dh0, dc0, dw = _gradients(ctx, grads, _backward_impl)
        return (dx, dh0, dc0, None, None, None, None, *dw)


def run_layer(x, h0, c0, weights, lengths, engine, directions, training):
    """One layer through the operator (under torch.compile) or the eager Function."""
    if torch.compiler.is_compiling():
        return torch.ops.fastlstm.lstm_layer(x, h0, c0, weights, lengths, engine, directions,
                                             training)
    if not training:
        with torch.no_grad():
            return _forward_impl(x, h0, c0, weights, lengths, engine, directions, False)
    return list(_Eager.apply(x, h0, c0, lengths, engine, directions, training, *weights))
