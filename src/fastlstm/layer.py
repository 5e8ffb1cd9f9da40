"""fastlstm.LSTMLayer: a batched, multi-layer, bidirectional LSTM with torch.nn.LSTM's semantics,
names and shapes, on the C sequence kernels (csrc/fl_seq.h: fl_seq_forward/backward)."""

from __future__ import annotations

import functools

import numpy as np

from . import _core
from ._buffers import aligned_empty
from ._names import param_names, suffix
from ._params import FlatParams
from ._records import DirectionRecord, LayerForward, LayerRecord
from ._governor import TeamGovernor as _TeamGovernor
from ._validation import (check_lengths, check_mask, check_positive_int, dtype_name,
                          resolve_dtype, shape_str, to_array)

__all__ = ["LSTMLayer", "LSTMStream"]

# Elements of the inference scratch (the gate preactivations of a chunk of steps): 4 Mi values,
# 16 MiB in float32, whatever T and B.
_INFERENCE_CHUNK_ELEMENTS = 1 << 22
# The keywords of a cell without ONNX extras (shared: the kernels only read them).
_NO_EXTRAS = {"peephole": None, "clip": 0.0, "input_forget": False}


class LSTMLayer:
    """Multi-layer (bi)directional LSTM, gate order i, f, g, o, exact sigmoid.

    Parameters
    ----------
    input_size, hidden_size : int
    num_layers : int, default 1
    bidirectional : bool, default False
    batch_first : bool, default False
        Inputs/outputs as (B, T, .) instead of (T, B, .).
    dtype : {np.float32, np.float64}, default np.float32
    seed : int or None
        Seed of PyTorch's default initialisation, uniform in +-1/sqrt(H).
    activation : {'tanh', 'relu', 'linear'}, default 'tanh'
        Keras's ``activation``: the function of the candidate gate and of the cell output,
        ``h = o * act(c)``. torch.nn.LSTM always uses tanh.

    peepholes : bool, default False
        ONNX's peephole connections: ``i`` and ``f`` also see ``p * c_{t-1}``, ``o`` sees
        ``p * c_t``; parameters ``peephole_l{k}[_reverse]`` (3H) in ONNX's order i, o, f.
    clip : float or None, default None
        ONNX's cell clip: every activation's argument is clipped to ``[-clip, clip]``.
    input_forget : bool, default False
        ONNX's coupled gates: ``f = 1 - i`` (the f rows of the weights are unused).
    reverse : bool, default False
        With one direction, run it backwards over the sequence (ONNX's ``direction="reverse"``).

    Parameters live in one contiguous buffer; ``parameters()`` yields ``(name, view)`` with
    PyTorch's names (``weight_ih_l0 (4H, I)``, ``weight_hh_l0 (4H, H)``, ``bias_ih_l0``,
    ``bias_hh_l0``, ``..._reverse``); ``grads`` holds views of the same names after ``backward``.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False,
                 batch_first=False, dtype=np.float32, seed=None, activation="tanh",
                 peepholes=False, clip=None, input_forget=False, reverse=False):
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = check_positive_int(hidden_size, "hidden_size")
        self.num_layers = check_positive_int(num_layers, "num_layers")
        self.bidirectional = bool(bidirectional)
        self.batch_first = bool(batch_first)
        self.dtype = resolve_dtype(dtype)
        if not isinstance(activation, str) or activation not in _core.ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(_core.ACTIVATIONS)}, got "
                             f"{activation!r}")
        self.activation = activation
        self.peepholes = bool(peepholes)
        if clip is not None:
            try:
                clip = float(clip)
            except (TypeError, ValueError):
                raise TypeError(f"clip: expected a positive number or None, got {clip!r}") \
                    from None
            # positive in the layer's own dtype too (a float32 clip below ~1e-45 would be 0)
            if not (clip > 0 and np.isfinite(clip) and self.dtype.type(clip) > 0):
                raise ValueError(f"clip: expected a positive number (in {self.dtype.name}) or "
                                 f"None, got {clip}")
        self.clip = clip
        self.input_forget = bool(input_forget)
        self.reverse = bool(reverse)
        if self.reverse and self.bidirectional:
            raise ValueError("reverse: a bidirectional layer already runs both ways; reverse=True "
                             "is for one direction")
        self.num_directions = 2 if self.bidirectional else 1
        self._names = param_names(self.num_layers, self.bidirectional, self.peepholes)
        self._shapes = {name: self._shape_of(name) for name in self._names}
        self._store = FlatParams(self._shapes, self.dtype)
        self._params, self.grads = self._store.views, self._store.grad_views
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.hidden_size)
        for name in self._names:
            self._params[name][...] = rng.uniform(-bound, bound, self._shapes[name])
        self._cache = None
        self._pack_cache = {}
        self._scratch_pool = []
        self._split = 0  # fl_split: 0 = by the shape; tests and tuning runs force the others
        self._step = 0  # fl_step: 0 = by the shape; tests and tuning runs force the others
        self._governor = _TeamGovernor()

    # -- packed weights -----------------------------------------------------------------

    def _packed(self, layer, direction):
        """``(isa, packed)``: the weights of one layer and direction packed for the kernels."""
        entry = self._pack_entry(layer, direction)
        return entry[0], entry[2]

    def _pack_entry(self, layer, direction):
        """``(isa, snapshot, packed, bias)`` of one layer and direction: the weights packed for
        the kernels and ``b_ih + b_hh``.

        Kept across calls and checked against a copy of the parameters they were made from
        (weight_ih, weight_hh, bias_ih, bias_hh: one span of the flat buffer, one comparison),
        by content, before every use: whatever changed the parameters (``load_state_dict``, an
        optimizer step, a write into a view from ``parameters()``) makes the next call repack.
        Entries are replaced, never changed, so a call in another thread keeps the one it took.
        """
        isa = _core.isa()
        names = self._names_of(layer, direction)
        offsets, data = self._store.offsets, self._store.data
        lo, hi = offsets[names[0]], offsets[names[3]] + 4 * self.hidden_size
        live = data[lo:hi]
        entry = self._pack_cache.get((layer, direction))
        if entry is not None and entry[0] == isa and _core.same_bytes(entry[1], live):
            return entry
        snap = live.copy()
        H, G = self.hidden_size, 4 * self.hidden_size
        in_size = (offsets[names[1]] - offsets[names[0]]) // G
        w_ih, w_hh = snap[:G * in_size], snap[G * in_size:G * (in_size + H)]
        bias = snap[G * (in_size + H):G * (in_size + H + 1)] + snap[G * (in_size + H + 1):]
        packed = aligned_empty(_core.packed_size(dtype_name(self.dtype), in_size, H, isa),
                               self.dtype)
        _core.pack_weights(packed, w_ih, w_hh, in_size, H, isa)
        entry = (isa, snap, packed, bias)
        self._pack_cache[(layer, direction)] = entry
        return entry

    def _take_scratch(self, n):
        """A scratch buffer of at least n values, from the pool when one is free: fresh pages of
        tens of MiB cost a page fault each on first touch, every call. Buffers go back with
        _give_scratch; a call in another thread takes another one."""
        try:
            buf = self._scratch_pool.pop()
        except IndexError:
            buf = None
        return buf if buf is not None and buf.size >= n else aligned_empty(n, self.dtype)

    def _give_scratch(self, *bufs):
        for buf in bufs:
            if len(self._scratch_pool) < 4:
                self._scratch_pool.append(buf)

    def __getstate__(self):
        # The named views are rebuilt on unpickling (pickle would copy them apart from the
        # buffers, and updates to the buffers would no longer reach them); no cache is kept.
        state = self.__dict__.copy()
        for name in ("_params", "grads", "_cache", "_pack_cache", "_scratch_pool",
                     "_governor"):
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._params, self.grads = self._store.views, self._store.grad_views
        self._cache = None
        self._pack_cache = {}
        self._scratch_pool = []
        self._governor = _TeamGovernor()
        self.__dict__.setdefault("_split", 0)
        self.__dict__.setdefault("_step", 0)

    def __repr__(self):
        extra = "".join(f", {k}={v!r}" for k, v, default in (
            ("num_layers", self.num_layers, 1), ("bidirectional", self.bidirectional, False),
            ("batch_first", self.batch_first, False), ("activation", self.activation, "tanh"),
            ("peepholes", self.peepholes, False), ("clip", self.clip, None),
            ("input_forget", self.input_forget, False), ("reverse", self.reverse, False))
            if v != default)
        return (f"LSTMLayer({self.input_size}, {self.hidden_size}{extra}, "
                f"dtype={np.dtype(self.dtype).name})")

    def _shape_of(self, name):
        H, G = self.hidden_size, 4 * self.hidden_size
        layer = int(name.split("_l")[1].split("_")[0])
        in_size = self.input_size if layer == 0 else self.num_directions * H
        if name.startswith("weight_ih"):
            return (G, in_size)
        if name.startswith("weight_hh"):
            return (G, H)
        if name.startswith("peephole"):
            return (3 * H,)
        return (G,)

    @staticmethod
    @functools.lru_cache(maxsize=None)
    def _names_of(layer, direction):
        """weight_ih, weight_hh, bias_ih, bias_hh names of one layer and direction."""
        sfx = suffix(layer, direction)
        return tuple(kind + sfx for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def _backwards(self, direction):
        """Whether this direction runs from the last step to the first."""
        return direction == 1 or self.reverse

    def _extras(self, layer, direction):
        """The ONNX cell extras of one layer and direction as seq_forward keywords."""
        if not (self.peepholes or self.clip or self.input_forget):
            return _NO_EXTRAS
        sfx = suffix(layer, direction)
        return {"peephole": self._params["peephole" + sfx] if self.peepholes else None,
                "clip": self.clip or 0.0, "input_forget": self.input_forget}

    @property
    def flat(self):
        """Every parameter in one buffer, PyTorch's order (``parameters()`` are views of it)."""
        return self._store.data

    @property
    def grad_flat(self):
        """The gradients of the last ``backward``, laid out as ``flat`` (``grads`` views)."""
        return self._store.grad

    def offsets(self):
        """``{name: start}``: where each parameter starts in ``flat``."""
        return dict(self._store.offsets)

    def parameters(self):
        """Yield ``(name, array)``: views into the one parameter buffer, PyTorch's order."""
        for name in self._names:
            yield name, self._params[name]

    def state_dict(self):
        """Copies of the parameters under PyTorch's names."""
        return {name: self._params[name].copy() for name in self._names}

    def load_state_dict(self, state):
        """Load PyTorch-named arrays, e.g. ``{k: v.numpy() for k, v in
        m.state_dict().items()}``; every shape is checked before anything is written."""
        missing = [n for n in self._names if n not in state]
        unexpected = [k for k in state if k not in self._shapes]
        if missing or unexpected:
            raise ValueError(f"state: missing keys {missing}, unexpected keys {unexpected}")
        arrays = {}
        for name in self._names:
            arr = to_array(state[name], name, self.dtype)
            if arr.shape != self._shapes[name]:
                raise ValueError(f"{name}: expected shape {shape_str(self._shapes[name])}, "
                                 f"got {shape_str(arr.shape)}")
            arrays[name] = arr
        for name, arr in arrays.items():
            self._params[name][...] = arr

    def _state(self, value, name, B):
        L, H = self.num_layers * self.num_directions, self.hidden_size
        if value is None:
            return None
        arr = to_array(value, name, self.dtype)
        if arr.shape != (L, B, H):
            raise ValueError(f"{name}: expected shape ({L}, {B}, {H}), got {shape_str(arr.shape)}")
        return np.ascontiguousarray(arr)

    def stream(self, batch_size=1, state=None):
        """A stream over this layer: feed one step at a time (see :class:`LSTMStream`).

        Parameters
        ----------
        batch_size : int, default 1
        state : (h0, c0) each (L, B, H), or None for zeros
            The initial state, which ``reset`` goes back to.
        """
        return LSTMStream(self, batch_size, state)

    def forward(self, x, state=None, *, lengths=None, reset=None, training=True):
        """Run the layer.

        Parameters
        ----------
        x : array (T, B, I), or (B, T, I) with batch_first
        state : (h0, c0) each (L*D, B, H), or None for zeros
        lengths : (B,) integers in [0, T], or None (every sequence runs all T steps)
            Sequence b runs steps ``0 .. lengths[b] - 1`` (PyTorch's packed sequences): its
            outputs past them are zeros, ``h_n``, ``c_n`` hold its state at its own last step,
            the reverse direction starts there, and the layers above see the shorter sequence.
            The cost follows the sum of the lengths. Length 0: the state passes through.
        reset : (T, B) booleans ((B, T) with batch_first), or None
            Where true, sequence b starts a new segment at step t: its state before that step
            is the initial one again (``state``, or zeros); the reverse direction ends a
            segment there. One call equals running the segments one by one.
        training : bool
            False is the inference path: no caches are kept and backward is refused.

        Returns
        -------
        y : (T, B, D*H) (or (B, T, D*H)), (h_n, c_n) each (L*D, B, H), in the layer's dtype.
        """
        y, states, rec = self._run(x, state, lengths, reset, training)
        self._cache = rec
        return y, states

    def _run(self, x, state, lengths, reset, training):
        """forward's work; returns its results and the record of a training call (None for
        inference) without keeping it (fastlstm.torch keeps it in autograd's graph)."""
        x = to_array(x, "x", self.dtype)
        if x.ndim != 3:
            raise ValueError(f"x: expected 3 dimensions ({'B, T' if self.batch_first else 'T, B'}"
                             f", {self.input_size}), got shape {shape_str(x.shape)}")
        if self.batch_first:
            x = x.transpose(1, 0, 2)
        T, B, I = x.shape
        if I != self.input_size:
            raise ValueError(f"x: expected {self.input_size} features in the last axis, got "
                             f"shape {shape_str(x.shape)}")
        if T == 0 or B == 0:
            raise ValueError(f"x: expected at least one step and one sequence, got shape "
                             f"{shape_str(x.shape)}")
        h0 = c0 = None
        if state is not None:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError("state must be a tuple (h0, c0) or None")
            h0 = self._state(state[0], "h0", B)
            c0 = self._state(state[1], "c0", B)
        if lengths is not None:
            lengths = check_lengths(lengths, T, B)
        if reset is not None:
            layout = "B, T" if self.batch_first else "T, B"
            reset = check_mask(reset, "reset", (B, T) if self.batch_first else (T, B), layout)
            if self.batch_first:
                reset = reset.T
        plan = _StepPlan(T, B, lengths, reset)
        H, D, G = self.hidden_size, self.num_directions, 4 * self.hidden_size
        DH, rows = D * H, plan.rows
        h0, c0 = plan.sort_state(h0), plan.sort_state(c0)
        h_n = np.empty((self.num_layers * D, B, H), self.dtype)
        c_n = np.empty((self.num_layers * D, B, H), self.dtype)
        caches = []
        inp = plan.pack(np.ascontiguousarray(x))  # (rows, I)
        act = _core.ACTIVATIONS[self.activation]
        # Inference runs in chunks of steps so its scratch (the input projection of a chunk) stays
        # bounded however long the sequence or large the batch: the state carries across chunks.
        chunk = T if training else max(1, min(T, _INFERENCE_CHUNK_ELEMENTS // (B * G)))
        off, bs = plan.offsets, plan.batch_sizes
        for layer in range(self.num_layers):
            in_size = inp.shape[1]
            out = aligned_empty((rows, DH), self.dtype)
            out_flat, inp_flat = out.reshape(-1), inp.reshape(-1)
            layer_cache = []
            gates = None if training else self._take_scratch(chunk * B * G)
            for d in range(D):
                k = layer * D + d
                isa, _, packed, bias = self._pack_entry(layer, d)
                h0_k = h0[k].reshape(-1) if h0 is not None else None
                c0_k = c0[k].reshape(-1) if c0 is not None else None
                c_last = c_n[k].reshape(-1)
                back = self._backwards(d)
                reset_d = plan.reset[1 if back else 0]
                run = dict(isa_code=isa, split=self._split, step=self._step, h_init=h0_k,
                           c_init=c0_k,
                           **self._extras(layer, d))
                gov, key = self._governor, (training, layer, d, T, B)
                if training:
                    gates = aligned_empty((rows, G), self.dtype)
                    cell = aligned_empty((rows, H), self.dtype)
                    gov.report(key, _core.seq_forward(
                        out_flat[d * H:], DH, cell.reshape(-1), gates.reshape(-1), c_last,
                        packed, inp_flat, h0_k, c0_k, bias, T, B, in_size, H, back, act,
                        threads=gov.threads(key), batch_sizes=bs, reset=reset_d, **run))
                    layer_cache.append(DirectionRecord(plan.steps_view(gates),
                                                       plan.steps_view(cell), h0_k, c0_k, isa,
                                                       packed))
                else:
                    starts = range(0, T, chunk)
                    h_carry = None
                    for n_done, t0 in enumerate(reversed(starts) if back else starts):
                        t1 = min(T, t0 + chunk)
                        o0, o1 = off[t0], off[t1]
                        if n_done:  # the state the previous chunk ended in
                            edge = t1 if back else t0 - 1
                            carried = plan.rows_at(edge)
                            if h_carry is None:
                                h_carry = np.zeros((B, H), self.dtype)
                            h_carry[:carried] = out[off[edge]:off[edge] + carried,
                                                    d * H:(d + 1) * H]
                            h_in, c_in = h_carry.reshape(-1), c_last
                        else:
                            h_in, c_in, carried = h0_k, c0_k, B
                        key = (training, layer, d, t1 - t0, B)  # chunks differ in length
                        gov.report(key, _core.seq_forward(
                            out_flat[o0 * DH + d * H:], DH, None, gates, c_last, packed,
                            inp_flat[o0 * in_size:o1 * in_size], h_in, c_in, bias, t1 - t0, B,
                            in_size, H, back, act, threads=gov.threads(key),
                            batch_sizes=None if bs is None else bs[t0:t1],
                            reset=None if reset_d is None else reset_d[o0:o1],
                            carried=carried, **run))
                h_n[k] = plan.last_state(out, d * H, back, h0_k, H)
            if not training:
                self._give_scratch(gates)
            if training:
                caches.append(LayerRecord(plan.steps_view(inp), plan.steps_view(out),
                                          tuple(layer_cache)))
            inp = out
        rec = LayerForward(tuple(caches), T, B, plan) if training else None
        y = plan.unpack(inp)
        if self.batch_first:
            y = y.transpose(1, 0, 2).copy()
        return y, (plan.unsort_state(h_n), plan.unsort_state(c_n)), rec

    def record(self, x, state=None):
        """A training forward whose record is returned instead of kept: the
        :class:`fastlstm._records.LayerForward` (every layer's input and output, every
        direction's gates and cell states), with the layer's own record of its last training
        forward (what ``backward`` reads) left as it was."""
        return self._run(x, state, None, None, True)[2]

    def backward(self, dy=None, dstate=None):
        """Gradients of the last training forward; fills ``self.grads``.

        ``dy`` is the gradient of the outputs y, ``dstate`` the pair ``(dh_n, dc_n)`` of the
        final states'; ``None`` for any of them (the whole ``dy``, the pair, or one of the
        pair) means zeros, without the work of reading them (a loss on ``h_n`` only passes
        ``backward(None, (dh_n, None))``).

        Returns ``dx`` shaped like x and ``(dh0, dc0)`` each (L*D, B, H). After a forward with
        ``lengths``, ``dy`` past a sequence's length is ignored (those outputs were zeros) and
        ``dx`` there is zero; ``dh_n``, ``dc_n`` are the gradients of each sequence's state at
        its own last step; ``dh0``, ``dc0`` gather every use of the initial state (a first
        step, each ``reset``).
        """
        if self._cache is None:
            raise RuntimeError("backward() needs a forward(x, training=True) first")
        return self._backward_of(self._cache, dy, dstate)

    def _backward_of(self, rec, dy, dstate, need_dx=True):
        """backward's work on a given record of a training forward (fills ``self.grads``);
        without need_dx the first layer skips its dx product and dx comes back None."""
        caches, T, B, plan = rec.layers, rec.steps, rec.batch, rec.plan
        H, D, G = self.hidden_size, self.num_directions, 4 * self.hidden_size
        DH, rows = D * H, plan.rows
        d_out = None  # the gradient reaching the outputs of the layer at hand, as rows
        if dy is not None:
            expected = (B, T, DH) if self.batch_first else (T, B, DH)
            dy = to_array(dy, "dy", self.dtype)
            if dy.shape != expected:
                raise ValueError(f"dy: expected shape {shape_str(expected)}, got "
                                 f"{shape_str(dy.shape)}")
            if self.batch_first:
                dy = dy.transpose(1, 0, 2)
            d_out = plan.pack(np.ascontiguousarray(dy))
        dh_n = dc_n = None
        if dstate is not None:
            if not isinstance(dstate, (tuple, list)) or len(dstate) != 2:
                raise TypeError("dstate must be a tuple (dh_n, dc_n) or None")
            if dstate[0] is not None:
                dh_n = plan.sort_state(self._state(dstate[0], "dh_n", B))
            if dstate[1] is not None:
                dc_n = plan.sort_state(self._state(dstate[1], "dc_n", B))
        L = self.num_layers
        dh0 = np.empty((L * D, B, H), self.dtype)
        dc0 = np.empty((L * D, B, H), self.dtype)
        act = _core.ACTIVATIONS[self.activation]
        bs = plan.batch_sizes
        h_prev_rows = None if plan.plain else self._take_scratch(rows * H)
        for layer in reversed(range(L)):
            inp, out, layer_cache = caches[layer].inputs, caches[layer].outputs, \
                caches[layer].directions
            in_size = inp.shape[-1]
            d_in = np.empty((rows, in_size), self.dtype) if layer or need_dx else None
            d_gates = self._take_scratch(rows * G)
            for d in range(D):
                k = layer * D + d
                n_w_ih, n_w_hh, n_b_ih, n_b_hh = self._names_of(layer, d)
                r = layer_cache[d]
                gates, cell, h0_k, c0_k, isa, packed = r.gates, r.cell, r.h0, r.c0, r.isa, r.packed
                scratch = self._take_scratch(
                    _core.bwd_scratch_size(dtype_name(self.dtype), T, B, in_size, H, isa, rows))
                dbias = self.grads[n_b_ih].reshape(-1)
                back = self._backwards(d)
                gov, key = self._governor, ("backward", layer, d, T, B)
                gov.report(key, _core.seq_backward(
                    self.grads[n_w_ih].reshape(-1), self.grads[n_w_hh].reshape(-1), dbias,
                    None if d_in is None else d_in.reshape(-1), d > 0, dh0[k].reshape(-1),
                    dc0[k].reshape(-1),
                    self.grads[n_b_hh.replace("bias_hh", "peephole")] if self.peepholes else None,
                    d_gates, scratch, None if d_out is None else d_out.reshape(-1)[d * H:], DH,
                    dh_n[k].reshape(-1) if dh_n is not None else None,
                    dc_n[k].reshape(-1) if dc_n is not None else None,
                    inp.reshape(-1), h0_k, c0_k, out.reshape(-1)[d * H:], DH,
                    cell.reshape(-1), gates.reshape(-1), packed, T, B, in_size, H,
                    back, act, isa_code=isa, split=self._split,
                    threads=gov.threads(key), batch_sizes=bs, reset=plan.reset[1 if back else 0],
                    h_prev_rows=h_prev_rows, **self._extras(layer, d)))
                self.grads[n_b_hh][...] = dbias  # both biases enter as their sum
                self._give_scratch(scratch)
            self._give_scratch(d_gates)
            d_out = d_in
        if h_prev_rows is not None:
            self._give_scratch(h_prev_rows)
        dx = None
        if d_out is not None:
            dx = plan.unpack(d_out)
            if self.batch_first:
                dx = dx.transpose(1, 0, 2).copy()
        return dx, (plan.unsort_state(dh0), plan.unsort_state(dc0))


class _StepPlan:
    """Where the rows of each step lie in one call (the C side's fl_steps).

    Without ``lengths`` or ``reset`` (``plain``) the rows are the padded (T, B) ones and every
    method is a view. With ``lengths``, the sequences are sorted longest first (stable) and
    step t holds its ``batch_sizes[t]`` running rows, the steps one after another (PyTorch's
    PackedSequence layout): the kernels then work on the real steps only, and ``unpack`` puts
    the results back in the caller's order with zeros past each length. ``reset`` becomes one
    byte per row for each direction: the forward one restarts before step t, the reverse one
    before step t - 1 (it runs the other way, so a segment that starts at t ends there).
    """

    def __init__(self, T, B, lengths, reset):
        self.T, self.B = T, B
        self.order = None
        self.plain = lengths is None and reset is None
        if self.plain:  # the common call: nothing to compute (a small call's Python counts)
            self.lengths = self.batch_sizes = self.index = None
            self.offsets = range(0, (T + 1) * B, B)
            self.rows = T * B
            self.reset = (None, None)
            return
        if lengths is None:  # restarts only: every row at every step
            self.lengths = np.full(B, T, np.int64)
            self.batch_sizes = self.index = None
            self.offsets = np.arange(0, (T + 1) * B, B, dtype=np.int64)
        else:
            # sorted longest first (stably); index: where each row of the steps lives in the
            # caller's (T * B) rows, t B + order[r]
            (self.order, self.lengths, self.batch_sizes, self.offsets,
             self.index) = _core.steps_of_lengths(np.ascontiguousarray(lengths, np.int64), T)
        self.rows = int(self.offsets[-1])
        self.reset = (None, None)
        if reset is not None:
            back = np.zeros_like(reset)
            back[:-1] = reset[1:]
            self.reset = tuple(self.pack(m).astype(np.uint8).reshape(-1) for m in (reset, back))

    def rows_at(self, t):
        return self.B if self.batch_sizes is None else int(self.batch_sizes[t])

    def pack(self, a):
        """(T, B, ...) in the caller's order -> (rows, ...) of the steps, contiguous."""
        a = a.reshape((self.T * self.B,) + a.shape[2:])
        return np.ascontiguousarray(a) if self.index is None else a.take(self.index, axis=0)

    def unpack(self, rows):
        """(rows, W) of the steps -> (T, B, W) in the caller's order, zeros past each length."""
        width = rows.shape[1]
        if self.index is None:
            return rows.reshape(self.T, self.B, width)
        out = np.empty((self.T, self.B, width), rows.dtype)
        _core.scatter_steps(out.reshape(-1), np.ascontiguousarray(rows).reshape(-1), width,
                            self.B, self.batch_sizes, self.offsets, self.order)
        return out

    def steps_view(self, rows):
        """What a record holds: (T, B, W) for a plain call, else the rows of the steps."""
        return rows.reshape(self.T, self.B, -1) if self.plain else rows

    def sort_state(self, s):
        """(L, B, H) in the caller's order -> the plan's row order (None stays None)."""
        if s is None or self.order is None:
            return s
        return np.ascontiguousarray(s[:, self.order])

    def unsort_state(self, s):
        if self.order is None:
            return s
        out = np.empty_like(s)
        out[:, self.order] = s
        return out

    def last_state(self, rows, col, backwards, h0, H):
        """(B, H): each row's hidden state at the last step it ran (the first, for a direction
        that runs backwards), or its initial state if it ran none; from columns [col, col + H)
        of rows (rows, W), the steps' outputs."""
        if self.plain:  # every row ran all T steps
            last = rows[:self.B] if backwards else rows[(self.T - 1) * self.B:]
            return last[:, col:col + H]
        out = np.empty((self.B, H), rows.dtype)
        _core.last_rows(out.reshape(-1), rows.reshape(-1), rows.shape[1], col, H, self.lengths,
                        self.offsets, backwards, None if h0 is None else h0.reshape(-1))
        return out


class LSTMStream:
    """One step at a time through an :class:`LSTMLayer`, for streaming inference (audio frames,
    a control loop, a served model fed as data arrives).

    ``step(x_t)`` runs every layer on one step and returns its output; the state carries over
    to the next step. The weights are packed once, when the stream is made, and the stream
    keeps using them: change the layer's weights and make a new stream. Every buffer is made
    and checked once, so a step is one kernel call that allocates nothing: its output is the
    stream's own buffer, overwritten by the next step (copy it to keep it). Steps equal the
    layer's whole-sequence forward, to the bit. Threads: the process's setting from 256 Ki
    weights (times the batch) on (the units split), one thread below, where a team's start
    and its barrier cost more than they save (measured: at I=64, H=128, batch 1, one thread
    runs 221 K steps/s and two 178 K).

    Bidirectional and reverse layers are refused: they need the whole sequence.
    """

    _TEAM_MIN_WEIGHTS = 1 << 18

    def __init__(self, layer, batch_size=1, state=None):
        if layer.bidirectional or layer.reverse:
            raise ValueError("stream: a bidirectional or reverse layer needs the whole "
                             "sequence; stream a forward layer, or call forward()")
        self.layer = layer
        self.batch_size = B = check_positive_int(batch_size, "batch_size")
        L, H, dt = layer.num_layers, layer.hidden_size, layer.dtype
        runs, isa, weights = [], None, 0
        for k in range(L):
            isa, packed = layer._packed(k, 0)
            _, _, b_ih, b_hh = (layer._params[n] for n in layer._names_of(k, 0))
            extras = layer._extras(k, 0)
            peephole = None if extras["peephole"] is None else extras["peephole"].copy()
            in_size = layer.input_size if k == 0 else H
            weights = max(weights, 4 * H * (in_size + H))
            runs.append((packed, (b_ih + b_hh).astype(dt), peephole, extras["clip"],
                         extras["input_forget"], in_size))
        # h: two halves (a step reads h_{t-1} while it writes h_t); c in place
        self._h = np.zeros((2, L, B, H), dt)
        self._c = np.zeros((L, B, H), dt)
        self._out = np.empty((B, H), dt)
        threads = 0 if weights * B >= self._TEAM_MIN_WEIGHTS else 1
        self._runner = _core.StreamRunner(dt.name, isa, threads, B, H, runs,
                                          _core.ACTIVATIONS[layer.activation], self._h,
                                          self._c, np.empty(4 * B * H, dt), self._out)
        self._dtype = dt
        self._shapes = ((B, layer.input_size),) + (((layer.input_size,),) if B == 1 else ())
        self._h0 = np.zeros((L, B, H), dt)
        self._c0 = np.zeros((L, B, H), dt)
        if state is not None:
            self.state = state
            self._h0[...], self._c0[...] = self.state

    @property
    def state(self):
        """``(h, c)``, each ``(L, B, H)``: copies of the state after the last step. Assign a
        pair of such arrays to resume from a saved state."""
        return self._h[self._runner.current].copy(), self._c.copy()

    @state.setter
    def state(self, value):
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise TypeError("state must be a tuple (h, c)")
        L, B, H = self.layer.num_layers, self.batch_size, self.layer.hidden_size
        arrays = []
        for name, v in zip(("h", "c"), value):
            arr = to_array(v, name, self._dtype)
            if arr.shape != (L, B, H):
                raise ValueError(f"{name}: expected shape ({L}, {B}, {H}), got "
                                 f"{shape_str(arr.shape)}")
            arrays.append(arr)
        self._h[self._runner.current], self._c[...] = arrays

    def reset(self, mask=None):
        """Back to the initial state (zeros, or the ``state`` the stream was made with): every
        sample, or those where ``mask`` (B,) is true."""
        h = self._h[self._runner.current]
        if mask is None:
            h[...], self._c[...] = self._h0, self._c0
            return
        m = np.asarray(mask)
        if m.shape != (self.batch_size,) or m.dtype.kind not in "bi":
            raise ValueError(f"mask: expected ({self.batch_size},) booleans, got "
                             f"{m.dtype} array of shape {shape_str(m.shape)}")
        m = m.astype(bool)
        h[:, m], self._c[:, m] = self._h0[:, m], self._c0[:, m]

    def step(self, x_t):
        """One step: ``x_t`` ``(B, I)`` (or ``(I,)`` for a stream of batch 1) -> the last
        layer's output ``(B, H)`` (or ``(H,)``), the stream's buffer, which the next step
        overwrites."""
        x = x_t
        if not (type(x) is np.ndarray and x.dtype == self._dtype and x.flags.c_contiguous):
            x = np.ascontiguousarray(to_array(x_t, "x_t", self._dtype))
        if x.shape not in self._shapes:
            raise ValueError(f"x_t: expected shape "
                             f"{' or '.join(shape_str(s) for s in self._shapes)}, got "
                             f"{shape_str(x.shape)}")
        self._runner.step(x)
        return self._out[0] if x.ndim == 1 else self._out
