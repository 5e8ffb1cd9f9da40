"""Training pieces: a Dense head, the MSE loss, SGD and Adam (Keras's update rules and defaults),
gradient clipping by value and by global norm, seeded mini-batches.

Parameters and gradients live in flat buffers (``LSTMLayer.flat``/``grad_flat``,
``Dense.flat``/``grad_flat``); an optimizer updates a list of such buffers in place with a few
whole-buffer NumPy operations, so the per-batch Python work is one kernel call per layer plus the
update, whatever the number of weight tensors.
"""

from __future__ import annotations

import numpy as np

from ._params import FlatParams
from ._validation import check_positive_int, resolve_dtype, shape_str

__all__ = ["Dense", "mse_loss", "SGD", "Adam", "make_optimizer", "clip_by_value",
           "clip_by_global_norm", "batch_indices"]


class Dense:
    """``y = x @ weight.T + bias`` (Keras's ``Dense`` without activation).

    Parameters
    ----------
    in_features, out_features : int
    dtype : float32 or float64
    seed : int, Generator or None
        Initialisation as Keras's: weight Glorot-uniform, ``U(+-sqrt(6 / (in + out)))``; bias 0.

    ``weight`` (out, in) and ``bias`` (out,) are views into ``flat``; after ``backward``,
    ``grads['weight']`` and ``grads['bias']`` are views into ``grad_flat``.
    """

    def __init__(self, in_features, out_features, dtype=np.float32, seed=None):
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        self.dtype = resolve_dtype(dtype)
        self._store = FlatParams({"weight": (self.out_features, self.in_features),
                                  "bias": (self.out_features,)}, self.dtype)
        self._bind()
        rng = np.random.default_rng(seed)
        limit = np.sqrt(6.0 / (self.in_features + self.out_features))
        self.weight[...] = rng.uniform(-limit, limit, self.weight.shape)
        self._x = None

    def _bind(self):
        self.weight, self.bias = self._store["weight"], self._store["bias"]
        self.grads = self._store.grad_views

    @property
    def flat(self):
        """weight then bias, in one buffer."""
        return self._store.data

    @property
    def grad_flat(self):
        return self._store.grad

    def __getstate__(self):
        state = self.__dict__.copy()
        for name in ("weight", "bias", "grads", "_x"):
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._x = None
        self._bind()

    def forward(self, x):
        """x (N, in) -> (N, out); keeps x for backward."""
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"x: expected shape (N, {self.in_features}), got {shape_str(x.shape)}")
        self._x = x
        return x @ self.weight.T + self.bias

    def backward(self, dy):
        """dy (N, out) -> dx (N, in); fills ``grads``."""
        if self._x is None:
            raise RuntimeError("backward() needs a forward() first")
        np.matmul(dy.T, self._x, out=self.grads["weight"])
        np.sum(dy, axis=0, out=self.grads["bias"])
        return dy @ self.weight


def mse_loss(pred, target):
    """Mean squared error over every element (Keras's ``'mse'`` averaged over the batch) and its
    gradient with respect to ``pred``."""
    diff = pred - target
    return float(np.mean(diff * diff)), diff * (2.0 / diff.size)


def clip_by_value(grads, value):
    """Clip every gradient element to ``[-value, value]`` in place (Keras's ``clipvalue``)."""
    for g in grads:
        np.clip(g, -value, value, out=g)


def clip_by_global_norm(grads, max_norm):
    """Scale all gradients together so their joint L2 norm is at most ``max_norm`` (Keras's
    ``global_clipnorm``); returns the norm before clipping. A NaN norm leaves them as they are
    (the loss check reports it)."""
    norm = float(np.sqrt(sum(float(np.dot(g, g)) for g in grads)))
    if norm > max_norm:
        scale = max_norm / norm
        for g in grads:
            g *= g.dtype.type(scale)
    return norm


class _Optimizer:
    def __init__(self, learning_rate, clipvalue=None, global_clipnorm=None):
        self.learning_rate = _positive_float(learning_rate, "learning_rate")
        self.clipvalue = None if clipvalue is None else _positive_float(clipvalue, "clipvalue")
        self.global_clipnorm = (None if global_clipnorm is None
                                else _positive_float(global_clipnorm, "global_clipnorm"))
        self.iterations = 0
        self._slots = None

    def step(self, params, grads):
        """Update the flat buffers ``params`` in place from ``grads`` (same shapes; the grads
        may be clipped in place)."""
        if self._slots is None:
            self._slots = [self._new_slots(p) for p in params]
        if self.clipvalue is not None:
            clip_by_value(grads, self.clipvalue)
        if self.global_clipnorm is not None:
            clip_by_global_norm(grads, self.global_clipnorm)
        self.iterations += 1
        for p, g, slots in zip(params, grads, self._slots):
            self._update(p, g, slots)


class SGD(_Optimizer):
    """Stochastic gradient descent with momentum, Keras's rule and defaults:
    ``v = momentum * v - lr * g; p += v`` (Nesterov: ``p += momentum * v - lr * g``)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, clipvalue=None,
                 global_clipnorm=None):
        super().__init__(learning_rate, clipvalue, global_clipnorm)
        momentum = float(momentum)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum: expected a number in [0, 1), got {momentum}")
        self.momentum = momentum
        self.nesterov = bool(nesterov)

    def _new_slots(self, p):
        return np.zeros_like(p) if self.momentum else None

    def _update(self, p, g, v):
        lr = p.dtype.type(self.learning_rate)
        if v is None:
            p -= lr * g
            return
        m = p.dtype.type(self.momentum)
        v *= m
        v -= lr * g
        if self.nesterov:
            p += m * v - lr * g
        else:
            p += v


class Adam(_Optimizer):
    """Adam with Keras 3's rule and defaults (``epsilon=1e-7`` added to ``sqrt(v)``, the bias
    corrections folded into the step size)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 clipvalue=None, global_clipnorm=None):
        super().__init__(learning_rate, clipvalue, global_clipnorm)
        for name, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"{name}: expected a number in [0, 1), got {value}")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon = _positive_float(epsilon, "epsilon")

    def _new_slots(self, p):
        return np.zeros_like(p), np.zeros_like(p)

    def _update(self, p, g, slots):
        m, v = slots
        t = self.iterations
        alpha = self.learning_rate * np.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        real = p.dtype.type
        m += (g - m) * real(1 - self.beta_1)
        v += (g * g - v) * real(1 - self.beta_2)
        p -= real(alpha) * m / (np.sqrt(v) + real(self.epsilon))


def make_optimizer(name, learning_rate, momentum=0.0, clip_value=None, clip_norm=None):
    """``'adam'`` or ``'sgd'`` (or an optimizer instance, returned unchanged)."""
    if isinstance(name, _Optimizer):
        return name
    if name == "adam":
        return Adam(learning_rate, clipvalue=clip_value, global_clipnorm=clip_norm)
    if name == "sgd":
        return SGD(learning_rate, momentum=momentum, clipvalue=clip_value,
                   global_clipnorm=clip_norm)
    raise ValueError(f"optimizer: expected 'adam', 'sgd' or an optimizer object, got {name!r}")


def batch_indices(n, batch_size, rng=None):
    """Index arrays of the mini-batches of one epoch: a permutation drawn from ``rng`` (or in
    order when ``rng`` is None), cut into ``batch_size`` pieces (the last may be smaller)."""
    batch_size = check_positive_int(batch_size, "batch_size")
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def _positive_float(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a positive number, got {value!r}") from None
    if not value > 0 or not np.isfinite(value):
        raise ValueError(f"{name}: expected a positive number, got {value}")
    return value

