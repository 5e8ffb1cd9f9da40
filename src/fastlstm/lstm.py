"""fastlstm.LSTM, the drop-in replacement for notebook 001's class, and fastlstm.lstm_step.

Same constructor, attributes, random draws, methods, returns and printed lines as
:class:`fastlstm.reference.LSTM`; the math runs in the C kernels (csrc/seed_impl.h, on csrc/fl_seq.h), a whole
sequence per call, and ``train`` runs up to ten epochs per call.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._buffers import aligned_empty
from ._core import NonFiniteLossError
from ._governor import TeamGovernor
from ._names import GATE_ORDER
from ._records import SeedForward
from ._params import FlatParams
from ._validation import (as_sequence, check_positive_int, check_real, check_shape,
                          dtype_name, resolve_dtype, shape_str, to_array)

__all__ = ["LSTM", "lstm_step", "NonFiniteLossError", "GATE_ORDER"]

_GATE_ROW = {name: k for k, name in enumerate(GATE_ORDER)}

def _gate_property(gate, kind, name):
    """The seed attribute `name` (Wf, bi, ...): rows of gate `gate` in the packed W or b."""
    row = _GATE_ROW[gate]

    def get(self):
        H = self.hidden_size
        return (self._W if kind == "W" else self._b)[row * H:(row + 1) * H]

    def set_(self, value):
        self._assign(get(self), value, name)

    return property(get, set_, doc=f"Gate {gate!r} {'weights' if kind == 'W' else 'bias'}: a "
                    "view into the model's packed parameters; assigning copies into it.")


class LSTM:
    """An LSTM with a dense head, notebook 001's class on C kernels.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        Sizes I, H, O.
    learning_rate : float, default 0.01
        SGD step of :meth:`backward` and :meth:`train`.
    dtype : {np.float64, np.float32}, default np.float64
        Precision of the weights and the computation. Weights are always drawn in float64 (as the
        seed) and then cast, so ``np.random.seed(s)`` gives the same weights in both.
    verbose : bool, default True
        Whether :meth:`train` prints ``Epoch {e}, Loss: {l:.6f}`` every 10 epochs.
    clip : float or None, default 5.0
        Every gradient is clipped elementwise to ``[-clip, clip]`` before the update (the seed's
        ``np.clip(dparam, -5, 5)``); None turns clipping off.

    Attributes
    ----------
    Wf, Wi, Wc, Wo : ndarray (H, H + I)
        Gate weights acting on ``[h_prev, x_t]`` (views into one packed buffer in gate order
        i, f, g, o; assigning to them copies into it).
    bf, bi, bc, bo : ndarray (H, 1)
    Wy : ndarray (O, H)
    by : ndarray (O, 1)
    After :meth:`forward`: ``inputs``, ``h_states``, ``c_states``, ``f_gates``, ``i_gates``,
    ``c_tildes``, ``o_gates`` as lists of column vectors, like the seed.
    """

    # The seed's candidate "c" is gate "g" here.
    Wi = _gate_property("i", "W", "Wi")
    Wf = _gate_property("f", "W", "Wf")
    Wc = _gate_property("g", "W", "Wc")
    Wo = _gate_property("o", "W", "Wo")
    bi = _gate_property("i", "b", "bi")
    bf = _gate_property("f", "b", "bf")
    bc = _gate_property("g", "b", "bc")
    bo = _gate_property("o", "b", "bo")

    def __init__(self, input_size, hidden_size, output_size, learning_rate=0.01, *,
                 dtype=np.float64, verbose=True, clip=5.0):
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = check_positive_int(hidden_size, "hidden_size")
        self.output_size = check_positive_int(output_size, "output_size")
        self.learning_rate = check_real(learning_rate, "learning_rate")
        self.clip = check_real(clip, "clip", allow_none=True)
        if self.clip is not None and self.clip <= 0:
            raise ValueError(f"clip must be > 0 (the gradient bound) or None (no clipping), "
                             f"got {self.clip}")
        self.verbose = bool(verbose)
        self.dtype = resolve_dtype(dtype)
        self._allocate()
        H, I, O = self.hidden_size, self.input_size, self.output_size
        # The seed's draws, in its order: Wf, Wi, Wc, Wo, then Wy, each randn * 0.01.
        for name in ("Wf", "Wi", "Wc", "Wo"):
            getattr(self, name)[...] = np.random.randn(H, H + I) * 0.01
        self._Wy[...] = np.random.randn(O, H) * 0.01
        self._cache = None

    # -- parameters ---------------------------------------------------------------------------

    def _allocate(self):
        """One allocation for all parameters (``flat``, the helper every model uses), its named
        parts ``_parts`` (W, b, Wy, by: flat views for the kernels) and ``_W``.. (the shapes
        the NumPy class has)."""
        H, I, O = self.hidden_size, self.input_size, self.output_size
        G, K = 4 * H, H + I
        self._store = FlatParams({"W": (G * K,), "b": (G,), "Wy": (O * H,), "by": (O,)},
                                 self.dtype, grads=False)
        self._bind()

    def _bind(self):
        H, I, O = self.hidden_size, self.input_size, self.output_size
        views = self._store.views
        self._parts = views
        self._W = views["W"].reshape(4 * H, H + I)
        self._b = views["b"].reshape(4 * H, 1)
        self._Wy = views["Wy"].reshape(O, H)
        self._by = views["by"].reshape(O, 1)

    @property
    def flat(self):
        """Every parameter in one buffer: W (4H, H+I) in gate order i, f, g, o, b, Wy, by."""
        return self._store.data

    def _assign(self, target, value, name):
        arr = to_array(value, name, self.dtype)
        if arr.shape != target.shape:
            raise ValueError(f"{name}: expected shape {shape_str(target.shape)}, "
                             f"got {shape_str(arr.shape)}")
        target[...] = arr

    @property
    def Wy(self):
        """Output layer weights (O, H)."""
        return self._Wy

    @Wy.setter
    def Wy(self, value):
        self._assign(self._Wy, value, "Wy")

    @property
    def by(self):
        """Output layer bias (O, 1)."""
        return self._by

    @by.setter
    def by(self, value):
        self._assign(self._by, value, "by")

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("_parts", "_W", "_b", "_Wy", "_by"):
            del state[key]
        state.pop("_governor", None)
        state.pop("_scratch_bufs", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._bind()

    def sigmoid(self, x):
        """The seed's clipped sigmoid, 1 / (1 + exp(-clip(x, -15, 15))) (NumPy, for users)."""
        return 1 / (1 + np.exp(-np.clip(x, -15, 15)))

    def __repr__(self):
        return (f"LSTM(input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"output_size={self.output_size}, learning_rate={self.learning_rate}, "
                f"dtype={self.dtype.name})")

    # -- forward / backward -------------------------------------------------------------------

    def _buffers(self, T):
        """What a forward of T steps keeps, hidden, cell (T, H) and gates (T, G) (new arrays:
        the states and gates the class exposes are views of them), and the packed-weights
        scratch of the sequence kernel (kept between calls)."""
        H = self.hidden_size
        return (np.empty((T, H), self.dtype), np.empty((T, H), self.dtype),
                np.empty((T, 4 * H), self.dtype),
                self._scratch("packed", _core.packed_size(dtype_name(self.dtype), self.input_size,
                                                          H)))

    def _scratch(self, name, n):
        """A scratch buffer of at least n values kept between calls: at H = 128 a call's packed
        weights and workspace are 2 MB, and fresh pages of that size cost a page fault each,
        every call (more than the kernels at T = 1). Not pickled, not shared between
        threads' calls on one model (which the shared weights rule out anyway)."""
        cache = self.__dict__.setdefault("_scratch_bufs", {})
        buf = cache.get(name)
        if buf is None or buf.size < n:
            buf = cache[name] = aligned_empty(n, self.dtype)
        return buf

    # A team pays from about this many weights (the units split meets at a barrier each step).
    _TEAM_MIN_WEIGHTS = 1 << 14

    def _threads(self, kind, T):
        """(governor, key, threads) for a forward or backward call: one thread for small
        models; else the governor's choice between the team and one thread (fastlstm._governor)."""
        H = self.hidden_size
        if 4 * H * (H + self.input_size) < self._TEAM_MIN_WEIGHTS:
            return None, None, 1
        gov = self.__dict__.get("_governor")
        if gov is None:
            gov = self._governor = TeamGovernor()
        key = (kind, T)
        return gov, key, gov.threads(key)

    def forward(self, inputs):
        """Run one sequence from zero state.

        Parameters
        ----------
        inputs : sequence of T steps
            A list of scalars (input_size 1), of ``(I,)`` vectors or ``(I, 1)`` columns, or an
            array ``(T,)``, ``(T, I)`` or ``(T, I, 1)``.

        Returns
        -------
        h_states : list of T arrays (H, 1)
        outputs : list of T arrays (O, 1)
        """
        x = as_sequence(inputs, "inputs", self.input_size, self.dtype)
        T = x.shape[0]
        hidden, cell, gates, w_t = self._buffers(T)
        outputs = np.empty((T, self.output_size), self.dtype)
        f = self._parts
        gov, key, threads = self._threads("forward", T)
        stats = _core.seed_forward(hidden.reshape(-1), cell.reshape(-1), gates.reshape(-1),
                                   outputs.reshape(-1), w_t.reshape(-1), x.reshape(-1), f["W"],
                                   f["b"], f["Wy"], f["by"], T, self.input_size,
                                   self.hidden_size, self.output_size, threads=threads)
        if gov is not None:
            gov.report(key, stats)
        # backward recomputes the outputs with the head as it is then, as the seed does
        self._cache = SeedForward(inputs, x, hidden, cell, gates)
        return self.h_states, list(outputs[:, :, None])

    def _cached(self, name):
        if self._cache is None:
            raise AttributeError(f"{name} exists after forward(); call forward(inputs) first")
        return self._cache

    def _gate_list(self, gate, name):
        gates = self._cached(name).gates
        H, row = self.hidden_size, _GATE_ROW[gate]
        return list(gates[:, row * H:(row + 1) * H, None])

    inputs = property(lambda self: self._cached("inputs").inputs,
                      doc="The inputs of the last forward, as given.")
    h_states = property(lambda self: list(self._cached("h_states").hidden[:, :, None]),
                        doc="Hidden states (H, 1) of each step of the last forward.")
    c_states = property(lambda self: list(self._cached("c_states").cell[:, :, None]),
                        doc="Cell states (H, 1) of each step of the last forward.")
    i_gates = property(lambda self: self._gate_list("i", "i_gates"), doc="Input gates (H, 1).")
    f_gates = property(lambda self: self._gate_list("f", "f_gates"), doc="Forget gates (H, 1).")
    c_tildes = property(lambda self: self._gate_list("g", "c_tildes"),
                        doc="Candidate cell values (H, 1).")
    o_gates = property(lambda self: self._gate_list("o", "o_gates"), doc="Output gates (H, 1).")

    def record(self, inputs):
        """A forward whose record (:class:`fastlstm._records.SeedForward`: x, hidden and cell
        states, gates) is returned, with the model's own record of its last forward (what
        ``backward`` and the state attributes read) left as it was."""
        kept = self._cache
        try:
            self.forward(inputs)
            return self._cache
        finally:
            self._cache = kept

    def backward(self, targets):
        """BPTT through the last forward, clipped SGD update; returns the loss / T.

        Parameters
        ----------
        targets : sequence of T steps
            Same forms as ``inputs`` of :meth:`forward`, with output_size values per step; T
            must equal the length of the last forward's inputs.
        """
        if self._cache is None:
            raise RuntimeError("backward() needs a forward() first: it differentiates the last "
                               "forward pass")
        rec = self._cache
        x, hidden, cell, gates = rec.x, rec.hidden, rec.cell, rec.gates
        T = x.shape[0]
        y = as_sequence(targets, "targets", self.output_size, self.dtype)
        if y.shape[0] != T:
            raise ValueError(f"targets: expected {T} time steps (the length of the last forward's "
                             f"inputs), shape ({T}, {self.output_size}), got "
                             f"{shape_str(y.shape)}")
        work = self._scratch("work", _core.seed_workspace_size(
            dtype_name(self.dtype), T, self.input_size, self.hidden_size, self.output_size))
        packed = self._scratch("packed", _core.packed_size(dtype_name(self.dtype), self.input_size,
                                                           self.hidden_size))
        f = self._parts
        gov, key, threads = self._threads("backward", T)
        loss, *stats = _core.seed_backward(f["W"], f["b"], f["Wy"], f["by"], work, packed,
                                           y.reshape(-1), x.reshape(-1), hidden.reshape(-1),
                                           cell.reshape(-1), gates.reshape(-1), T,
                                           self.input_size, self.hidden_size, self.output_size,
                                           float(self.learning_rate), self._clip_value(),
                                           threads=threads)
        if gov is not None:
            gov.report(key, stats)
        return loss

    def _clip_value(self):
        return 0.0 if self.clip is None else float(self.clip)

    # -- training -----------------------------------------------------------------------------

    def _pack(self, X_train, y_train):
        """All sequences end to end, (rows, I) and (rows, O), with their start offsets, and the
        longest sequence's length."""
        try:
            n = len(X_train)
        except TypeError:
            raise TypeError(f"X_train must be a list or array of sequences, got "
                            f"{type(X_train).__name__}") from None
        try:
            n_y = len(y_train)
        except TypeError:
            raise TypeError(f"y_train must be a list or array of sequences, got "
                            f"{type(y_train).__name__}") from None
        if n == 0:
            raise ValueError("X_train is empty: expected at least one sequence, got 0")
        if n_y != n:
            raise ValueError(f"y_train: expected {n} target sequences (one per sequence of "
                             f"X_train), got {n_y}")
        fast = self._pack_uniform(X_train, y_train, n)
        if fast is not None:
            return fast
        xs, ys = [], []
        offsets = np.zeros(n + 1, dtype=np.int64)
        for k in range(n):
            x = as_sequence(X_train[k], f"X_train[{k}]", self.input_size, self.dtype)
            y = as_sequence(y_train[k], f"y_train[{k}]", self.output_size, self.dtype)
            if y.shape[0] != x.shape[0]:
                raise ValueError(f"y_train[{k}]: expected {x.shape[0]} time steps like "
                                 f"X_train[{k}], got {y.shape[0]}")
            xs.append(x)
            ys.append(y)
            offsets[k + 1] = offsets[k] + x.shape[0]
        t_max = max(x.shape[0] for x in xs)
        return np.concatenate(xs).reshape(-1), np.concatenate(ys).reshape(-1), offsets, t_max

    def _pack_uniform(self, X_train, y_train, n):
        """The common case in one conversion: n sequences of one length T, as an (n, T) or
        (n, T, I) array or a list of equal-length sequences. None when that does not apply."""
        I, O = self.input_size, self.output_size
        x, y = _stack_equal(X_train, self.dtype), _stack_equal(y_train, self.dtype)
        try:
            x = np.asarray(X_train) if x is None else x
            y = np.asarray(y_train) if y is None else y
        except (ValueError, TypeError):  # ragged
            return None

        def stacked(a, size):  # (n, T) for one value per step, or (n, T, size)
            return a.dtype.kind in "biuf" and (
                (a.ndim == 2 and size == 1) or (a.ndim == 3 and a.shape[2] == size))

        if not (stacked(x, I) and stacked(y, O)) or x.shape[1] == 0 or \
                x.shape[:2] != y.shape[:2]:
            return None
        T = x.shape[1]
        x = to_array(x, "X_train", self.dtype).reshape(-1)
        y = to_array(y, "y_train", self.dtype).reshape(-1)
        return x, y, np.arange(0, (n + 1) * T, T, dtype=np.int64), T

    def train(self, X_train, y_train, epochs=100):
        """Train sequence by sequence, in order, as the seed does.

        Parameters
        ----------
        X_train : list of input sequences (each as :meth:`forward` accepts)
        y_train : list of target sequences, one per input sequence, of the same lengths
        epochs : int

        Returns
        -------
        losses : list of float
            The mean loss of each epoch. ``Epoch {e}, Loss: {l:.6f}`` is printed every 10
            epochs when ``verbose``.

        Raises
        ------
        NonFiniteLossError
            If a loss becomes NaN or inf; the weights stay at their last finite values and
            ``err.losses`` holds the completed epochs' losses.
        """
        epochs = check_positive_int(epochs, "epochs", minimum=0)
        x_all, y_all, offsets, t_max = self._pack(X_train, y_train)
        I, H, O = self.input_size, self.hidden_size, self.output_size
        hidden, cell, gates, w_t = self._buffers(t_max)
        work = self._scratch("work", _core.seed_workspace_size(dtype_name(self.dtype), t_max, I,
                                                               H, O))
        f = self._parts
        losses = []
        epoch = 0
        while epoch < epochs:
            # Run up to the next printed epoch in one C call.
            chunk = min(epochs - epoch, 10 - epoch % 10)
            chunk_losses = np.zeros(chunk, dtype=np.float64)
            try:
                _core.seed_train(f["W"], f["b"], f["Wy"], f["by"], chunk_losses,
                                 hidden.reshape(-1), cell.reshape(-1), gates.reshape(-1),
                                 w_t.reshape(-1), work, x_all, y_all, offsets, chunk, I, H, O,
                                 float(self.learning_rate), self._clip_value(), epoch)
            except NonFiniteLossError as err:
                self._report(losses, chunk_losses[:err.epochs_done - epoch], epoch)
                err.losses = losses
                self._cache = None
                raise
            self._report(losses, chunk_losses, epoch)
            epoch += chunk
        if epochs > 0:
            # As after the seed's train: the attributes of the last forward (the last sequence,
            # before its update) stay readable; the buffers still hold that forward.
            T = int(offsets[-1] - offsets[-2])
            last = x_all[offsets[-2] * I:].reshape(T, I)
            self._cache = SeedForward(X_train[len(offsets) - 2], last, hidden[:T], cell[:T],
                                      gates[:T])
        return losses

    def _report(self, losses, new_losses, first_epoch):
        """Append the losses of completed epochs and print the seed's line every 10 epochs."""
        for k, loss in enumerate(new_losses):
            losses.append(float(loss))
            if self.verbose and (first_epoch + k) % 10 == 0:
                print(f"Epoch {first_epoch + k}, Loss: {loss:.6f}")


def _stack_equal(seqs, dtype):
    """np.asarray(seqs) for a list of arrays of one shape and of dtype, copied in one Cython
    loop (NumPy converts a list item by item: 27 us for the seed's 152 windows, against 4 us);
    None when seqs is anything else."""
    if type(seqs) is not list or not seqs:
        return None
    first = seqs[0]
    if type(first) is not np.ndarray or first.dtype != dtype or not 1 <= first.ndim <= 2:
        return None
    out = np.empty((len(seqs),) + first.shape, dtype)
    return out if _core.stack_equal(seqs, out) else None


# ------------------------------------------------------------------------------------------------
# lstm_step
# ------------------------------------------------------------------------------------------------

def _common_dtype(arrays):
    dts = [a.dtype for a in arrays]
    return np.dtype(np.float32) if all(d == np.float32 for d in dts) else np.dtype(np.float64)


def lstm_step(x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc, *, return_gates=False):
    """One LSTM cell step (notebook 003's signature) on the C kernels.

    Parameters
    ----------
    x_t : array (I,) or (B, I)
    h_prev, c_prev : array (H,) or (B, H)
    Wf, Wi, Wo, Wc : array (H, H + I)
        Gate weights acting on ``[h_prev, x_t]``.
    bf, bi, bo, bc : array (H,) or (H, 1)
    return_gates : bool, default False
        Also return a dict with the activated gates ``forget``, ``input``, ``candidate``,
        ``output``, each shaped like ``h_prev``.

    Returns
    -------
    h_t, c_t : arrays shaped like ``h_prev``
        Computed in float32 when every argument is float32, else float64. The sigmoid is the
        exact one, ``1 / (1 + exp(-x))``, evaluated without overflow.
    """
    names = ("x_t", "h_prev", "c_prev", "Wf", "Wi", "Wo", "Wc", "bf", "bi", "bo", "bc")
    values = (x_t, h_prev, c_prev, Wf, Wi, Wo, Wc, bf, bi, bo, bc)
    arrays = [to_array(v, n) for v, n in zip(values, names)]
    dtype = _common_dtype(arrays)
    arrays = [np.ascontiguousarray(a, dtype=dtype) for a in arrays]
    x, h, c, wf, wi, wo, wc, b_f, b_i, b_o, b_c = arrays
    if h.ndim not in (1, 2):
        raise ValueError(f"h_prev: expected shape (H,) or (B, H), got {shape_str(h.shape)}")
    batched = h.ndim == 2
    H = h.shape[-1]
    B = h.shape[0] if batched else 1
    if H < 1:
        raise ValueError(f"h_prev: expected at least one hidden unit, got {shape_str(h.shape)}")
    check_shape(c, "c_prev", h.shape)
    if x.ndim != h.ndim or (batched and x.shape[0] != B):
        expected = f"({B}, I)" if batched else "(I,)"
        raise ValueError(f"x_t: expected shape {expected} to match h_prev "
                         f"{shape_str(h.shape)}, got {shape_str(x.shape)}")
    I = x.shape[-1]
    if I < 1:
        raise ValueError(f"x_t: expected at least one feature, got shape {shape_str(x.shape)}")
    for w, n in ((wf, "Wf"), (wi, "Wi"), (wo, "Wo"), (wc, "Wc")):
        check_shape(w, n, (H, H + I))
    biases = []
    for b, n in ((b_i, "bi"), (b_f, "bf"), (b_c, "bc"), (b_o, "bo")):
        if b.shape not in ((H,), (H, 1)):
            raise ValueError(f"{n}: expected shape ({H},) or ({H}, 1), got {shape_str(b.shape)}")
        biases.append(b.reshape(H))
    # Pack in gate order i, f, g, o; columns [0, H) act on h, [H, H+I) on x.
    W = np.concatenate([wi, wf, wc, wo])
    w_hh = np.ascontiguousarray(W[:, :H])
    w_ih = np.ascontiguousarray(W[:, H:])
    bias = np.concatenate(biases)
    h_out = np.empty((B, H), dtype)
    c_out = np.empty((B, H), dtype)
    gates = np.empty((B, 4 * H), dtype)
    scratch = np.empty((B, 4 * H), dtype)
    _core.cell_step(h_out.reshape(-1), c_out.reshape(-1), gates.reshape(-1), scratch.reshape(-1),
                    x.reshape(-1), h.reshape(-1), c.reshape(-1), w_ih.reshape(-1),
                    w_hh.reshape(-1), bias, B, I, H)
    shape = h.shape
    h_out, c_out = h_out.reshape(shape), c_out.reshape(shape)
    if not return_gates:
        return h_out, c_out
    named = {name: gates[:, k * H:(k + 1) * H].reshape(shape)
             for k, name in enumerate(("input", "forget", "candidate", "output"))}
    return h_out, c_out, named
