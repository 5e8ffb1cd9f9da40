"""See inside an LSTM: per-step gates and states, as arrays, tables and plots.

``trace(model, x)`` runs the model's own forward pass (the C kernels, which compute and keep
every gate for backward anyway) and hands out what it kept: nothing is recomputed in Python, so
what you see is what the model computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._tables import grid
from ._validation import shape_str, to_array

__all__ = ["Trace", "trace"]

_GATES = ("input", "forget", "candidate", "output")  # the row blocks i, f, g, o


@dataclass
class Trace:
    """Per-step values of one layer and direction.

    Arrays are ``(T, H)`` for one sequence and ``(T, B, H)`` for a batch, indexed by the time
    step (for a reverse direction too): the gates ``forget``, ``input``, ``candidate``,
    ``output``; ``cell`` and ``hidden``, the states after each step; ``cell_prev`` and
    ``hidden_prev``, the states each step started from. ``inputs`` ``(T, I)`` or
    ``(T, B, I)`` is what the layer read. ``parts`` maps ``(layer, direction)`` to the trace of
    every layer and direction of the model (this one included).
    """

    inputs: np.ndarray
    forget: np.ndarray
    input: np.ndarray
    candidate: np.ndarray
    output: np.ndarray
    cell: np.ndarray
    hidden: np.ndarray
    cell_prev: np.ndarray
    hidden_prev: np.ndarray
    layer: int = 0
    direction: int = 0
    parts: dict = field(default_factory=dict, repr=False)

    @property
    def steps(self):
        return self.hidden.shape[0]

    @property
    def cell_norm(self):
        """L2 norm of the cell state after each step, ``(T,)`` or ``(T, B)``."""
        return np.linalg.norm(self.cell, axis=-1)

    @property
    def hidden_norm(self):
        """L2 norm of the hidden state after each step, ``(T,)`` or ``(T, B)``."""
        return np.linalg.norm(self.hidden, axis=-1)

    def _one(self, name, step, sample):
        value = getattr(self, name)[step]
        return value if value.ndim == 1 else value[sample]

    def table(self, step=None, sample=0, feature_names=None, print_=True):
        """Seed 000's grid tables: for each step (or only ``step``) the inputs, the gate values
        and the state updates with their changes; then the state norms per step.

        Returns the text (and prints it unless ``print_=False``). For a batch, ``sample``
        chooses the sequence.
        """
        steps = range(self.steps) if step is None else [self._check_step(step)]
        blocks = []
        for t in steps:
            x = self._one("inputs", t, sample)
            names = feature_names or [f"x[{i}]" for i in range(x.shape[0])]
            if len(names) != x.shape[0]:
                raise ValueError(f"feature_names: expected {x.shape[0]} names, got {len(names)}")
            c, c0 = self._one("cell", t, sample), self._one("cell_prev", t, sample)
            h, h0 = self._one("hidden", t, sample), self._one("hidden_prev", t, sample)
            blocks.append("\n".join([
                f"--- Time step {t + 1} ---",
                "Input Features:",
                grid([[n, f"{v:.4f}"] for n, v in zip(names, x)], ["Feature", "Value"]),
                "",
                "Gate Values:",
                grid([["Forget Gate (f_t)", self._one("forget", t, sample)],
                      ["Input Gate (i_t)", self._one("input", t, sample)],
                      ["Cell Candidate (c_tilde)", self._one("candidate", t, sample)],
                      ["Output Gate (o_t)", self._one("output", t, sample)]],
                     ["Gate", "Values"]),
                "",
                "State Updates:",
                grid([["Previous Cell State", c0], ["New Cell State", c],
                      ["Change in Cell State", c - c0], ["Previous Hidden State", h0],
                      ["New Hidden State", h], ["Change in Hidden State", h - h0]],
                     ["State", "Values"]),
            ]))
        cn, hn = self.cell_norm, self.hidden_norm
        if cn.ndim == 2:
            cn, hn = cn[:, sample], hn[:, sample]
        blocks.append("State norms:\n" + grid(
            [[t + 1, f"{cn[t]:.4f}", f"{hn[t]:.4f}"] for t in range(self.steps)],
            ["Step", "Cell State Norm", "Hidden State Norm"]))
        text = "\n\n".join(blocks)
        if print_:
            print(text)
        return text

    def _check_step(self, step):
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or \
                not -self.steps <= step < self.steps:
            raise ValueError(f"step: expected an integer in [0, {self.steps}), got {step!r}")
        return int(step) % self.steps

    def plot(self, path, sample=0, title=None):
        """Heatmaps of the four gates, the cell and the hidden state over time (units x
        steps) and the state norms; written to ``path`` (PNG, matplotlib's Agg backend)."""
        try:
            import matplotlib
        except ImportError:
            raise ImportError("Trace.plot needs matplotlib: pip install 'fastlstm[plot]'") \
                from None
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        names = ("forget", "input", "candidate", "output", "cell", "hidden")
        fig, axes = plt.subplots(2, 4, figsize=(13, 5.2), constrained_layout=True)
        for ax, name in zip(axes.flat, names):
            value = getattr(self, name)
            value = value if value.ndim == 2 else value[:, sample]
            lim = (0, 1) if name in ("forget", "input", "output") else (None, None)
            cmap = "viridis" if name in ("forget", "input", "output") else "coolwarm"
            if lim[0] is None:
                m = float(np.nanmax(np.abs(value))) or 1.0
                lim = (-m, m)
            im = ax.imshow(value.T, aspect="auto", origin="lower", cmap=cmap, vmin=lim[0],
                           vmax=lim[1], extent=(0.5, self.steps + 0.5, -0.5,
                                                value.shape[1] - 0.5), interpolation="nearest")
            ax.set_title(name)
            ax.set_xlabel("step")
            ax.set_ylabel("unit")
            units = value.shape[1]
            # whole-number ticks: every step and unit when there are few, else a few of them
            if self.steps <= 20:
                ax.set_xticks(range(1, self.steps + 1))
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if units <= 20:
                ax.set_yticks(range(units))
            else:
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            if self.steps * units <= 40:  # a small grid: the values in the cells
                for t in range(self.steps):
                    for u in range(units):
                        dark = name in ("forget", "input", "output") and value[t, u] < 0.5
                        ax.text(t + 1, u, f"{value[t, u]:.2f}", ha="center", va="center",
                                fontsize=7, color="white" if dark else "black")
            fig.colorbar(im, ax=ax, shrink=0.8)
        cn, hn = self.cell_norm, self.hidden_norm
        if cn.ndim == 2:
            cn, hn = cn[:, sample], hn[:, sample]
        ax = axes.flat[6]
        steps = np.arange(1, self.steps + 1)
        ax.plot(steps, cn, marker="o", label="|c_t|")
        ax.plot(steps, hn, marker="s", label="|h_t|")
        ax.set_xlabel("step")
        ax.set_title("state norms")
        ax.legend(fontsize=8)
        axes.flat[7].axis("off")
        fig.suptitle(title or f"LSTM trace: layer {self.layer}, "
                              f"{'reverse' if self.direction else 'forward'} direction")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def to_frame(self):
        """A long pandas DataFrame: one row per (step[, sample], unit) with the gate and state
        values (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Trace.to_frame needs pandas: pip install pandas") from None
        batched = self.hidden.ndim == 3
        shape = self.hidden.shape
        index = np.indices(shape).reshape(len(shape), -1)
        columns = {"step": index[0] + 1}
        if batched:
            columns["sample"] = index[1]
        columns["unit"] = index[-1]
        for name in ("forget", "input", "candidate", "output", "cell", "hidden"):
            columns[name] = getattr(self, name).reshape(-1)
        return pd.DataFrame(columns)


def trace(model, x, state=None, layer=-1, direction=0):
    """Trace a forward pass of ``model`` over ``x``.

    Parameters
    ----------
    model : fastlstm.LSTMLayer or fastlstm.LSTM
    x : array
        For ``LSTMLayer``: ``(T, I)`` for one sequence, or a batch as ``forward`` takes it
        (``(T, B, I)``, or ``(B, T, I)`` with ``batch_first``). For ``LSTM`` (the notebook
        class): one sequence in any form its ``forward`` accepts.
    state : (h0, c0) or None
        ``LSTMLayer`` only: initial states ``(L*D, H)`` for one sequence or ``(L*D, B, H)``.
        The notebook class always starts from zeros.
    layer, direction : int
        Which part the returned trace shows (default: the last layer, forward direction); all
        parts are in ``Trace.parts``.

    Returns
    -------
    Trace
    """
    from .layer import LSTMLayer
    from .lstm import LSTM

    if isinstance(model, LSTMLayer):
        parts = _trace_layer(model, x, state)
        L, D = model.num_layers, model.num_directions
    elif isinstance(model, LSTM):
        if state is not None:
            raise ValueError("state: the notebook LSTM class always starts from zero states; "
                             "use LSTMLayer to trace from given states")
        parts = _trace_seed(model, x)
        L, D = 1, 1
    else:
        raise TypeError(f"model: expected fastlstm.LSTMLayer or fastlstm.LSTM, got "
                        f"{type(model).__name__}")
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or \
            not -L <= layer < L:
        raise ValueError(f"layer: expected an integer in [-{L}, {L}), got {layer!r}")
    if direction not in range(D):
        raise ValueError(f"direction: expected {'0 or 1' if D == 2 else '0'}, got {direction!r}")
    chosen = parts[(int(layer) % L, int(direction))]
    for part in parts.values():
        part.parts = parts
    return chosen


def _split_gates(gates, H):
    return {name: gates[..., k * H:(k + 1) * H] for k, name in enumerate(_GATES)}


def _shifted(values, first, reverse):
    """The state each step started from: ``first`` for the first processed step, else the
    state after the step processed before it."""
    prev = np.empty_like(values)
    if reverse:
        prev[:-1], prev[-1] = values[1:], first
    else:
        prev[1:], prev[0] = values[:-1], first
    return prev


def _trace_layer(model, x, state):
    arr = to_array(x, "x", model.dtype)
    single = arr.ndim == 2
    if single:
        arr = arr[:, None, :] if not model.batch_first else arr[None, :, :]
        if state is not None:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError("state must be a tuple (h0, c0) or None")
            state = tuple(None if s is None else _state_single(model, s, n)
                          for s, n in zip(state, ("h0", "c0")))
    rec = model.record(arr, state)
    B = rec.batch
    H, D = model.hidden_size, model.num_directions
    h0 = c0 = None
    if state is not None:
        h0 = to_array(state[0], "h0", model.dtype).reshape(-1, B, H)
        c0 = to_array(state[1], "c0", model.dtype).reshape(-1, B, H)
    parts = {}
    for layer, lr in enumerate(rec.layers):
        inp, out = lr.inputs, lr.outputs
        for d, dr in enumerate(lr.directions):
            gates, cell = dr.gates, dr.cell
            backwards = d == 1 or model.reverse  # this direction runs from the last step
            k = layer * D + d
            hidden = out[:, :, d * H:(d + 1) * H]
            zeros = np.zeros((B, H), model.dtype)
            values = dict(
                inputs=inp, **_split_gates(gates, H), cell=cell, hidden=hidden,
                cell_prev=_shifted(cell, c0[k] if c0 is not None else zeros, backwards),
                hidden_prev=_shifted(hidden, h0[k] if h0 is not None else zeros, backwards))
            if single:
                values = {n: v[:, 0] for n, v in values.items()}
            parts[(layer, d)] = Trace(**{n: np.array(v) for n, v in values.items()},
                                      layer=layer, direction=d)
    return parts


def _state_single(model, value, name):
    arr = to_array(value, name, model.dtype)
    L = model.num_layers * model.num_directions
    if arr.shape != (L, model.hidden_size):
        raise ValueError(f"{name}: expected shape ({L}, {model.hidden_size}) for one sequence, "
                         f"got {shape_str(arr.shape)}")
    return arr[:, None, :]


def _trace_seed(model, x):
    rec = model.record(x)
    xs, hidden, cell, gates = rec.x, rec.hidden, rec.cell, rec.gates
    H = model.hidden_size
    zeros = np.zeros(H, model.dtype)
    return {(0, 0): Trace(inputs=np.array(xs), **{n: np.array(v) for n, v in
                                                  _split_gates(gates, H).items()},
                          cell=np.array(cell), hidden=np.array(hidden),
                          cell_prev=_shifted(cell, zeros, False),
                          hidden_prev=_shifted(hidden, zeros, False))}
