"""What a training forward keeps for its backward, as named records: the models build them,
their backward reads them, and the tracing tool reads the ones ``record()`` returns. Named
tuples: immutable, and built in a fraction of a frozen dataclass's time (a record is made
on every training call, so a small call's Python counts)."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

import numpy as np

__all__ = ["DirectionRecord", "LayerRecord", "LayerForward", "SeedForward"]


class DirectionRecord(NamedTuple):
    """One layer and direction of an ``LSTMLayer`` forward: the activated gates (T, B, 4H) in
    gate order i, f, g, o, the cell states (T, B, H), and what its backward needs besides."""
    gates: np.ndarray
    cell: np.ndarray
    h0: Optional[np.ndarray]     # (B*H) flat, or None for zeros
    c0: Optional[np.ndarray]
    isa: int                     # the ISA path the packed weights were made for
    packed: Any


class LayerRecord(NamedTuple):
    """One layer: its input (T, B, in) and output (T, B, D*H), time major, and its directions."""
    inputs: np.ndarray
    outputs: np.ndarray
    directions: Tuple[DirectionRecord, ...]


class LayerForward(NamedTuple):
    """A whole ``LSTMLayer`` training forward: its layers, steps T and batch B, and with
    ``lengths`` or ``reset`` the plan of its rows (the records then hold the rows of the steps
    one after another, longest sequences first, instead of (T, B, .))."""
    layers: Tuple[LayerRecord, ...]
    steps: int
    batch: int
    plan: Any = None


class SeedForward(NamedTuple):
    """A forward of the notebook's ``LSTM`` on one sequence: the inputs as given, x (T, I),
    hidden and cell states (T, H), the activated gates (T, 4H), gate order i, f, g, o."""
    inputs: Any
    x: np.ndarray
    hidden: np.ndarray
    cell: np.ndarray
    gates: np.ndarray
