"""Named parameters in one flat buffer, their gradients in another: the one helper behind
``LSTM``, ``LSTMLayer`` and ``Dense`` (names, shapes, buffers, shaped views, offsets, copies
and pickling), so that an optimizer or a kernel can take a whole model's parameters as one
array while every name stays a view into it."""

from __future__ import annotations

import numpy as np

__all__ = ["FlatParams"]


class FlatParams:
    """Parameters ``names`` of the given ``shapes``, in that order, in one buffer ``data``
    (and ``grad``, the same size, unless ``grads=False``).

    ``views[name]`` / ``grad_views[name]`` are shaped views into the buffers, ``offsets[name]``
    where each starts; writing into a view writes the buffer. Pickling keeps the values and
    rebuilds the views on the new buffers (pickle would otherwise copy each view on its own,
    apart from the buffer).
    """

    def __init__(self, shapes, dtype, grads=True):
        self.names = tuple(shapes)
        self.shapes = {n: tuple(int(d) for d in shapes[n]) for n in self.names}
        self.dtype = np.dtype(dtype)
        self.offsets, start = {}, 0
        for n in self.names:
            self.offsets[n] = start
            start += int(np.prod(self.shapes[n], dtype=np.int64))
        self.size = start
        self.data = np.zeros(self.size, self.dtype)
        self.grad = np.zeros(self.size, self.dtype) if grads else None
        self._bind()

    def _bind(self):
        self.views = self._views_of(self.data)
        self.grad_views = None if self.grad is None else self._views_of(self.grad)

    def _views_of(self, buf):
        return {n: buf[o:o + int(np.prod(self.shapes[n], dtype=np.int64))].reshape(self.shapes[n])
                for n, o in self.offsets.items()}

    def __getitem__(self, name):
        return self.views[name]

    def __getstate__(self):
        return {"shapes": self.shapes, "names": self.names, "dtype": self.dtype.str,
                "data": self.data, "grad": self.grad}

    def __setstate__(self, state):
        self.__init__({n: state["shapes"][n] for n in state["names"]}, state["dtype"],
                      grads=state["grad"] is not None)
        self.data[...] = state["data"]
        if self.grad is not None:
            self.grad[...] = state["grad"]
