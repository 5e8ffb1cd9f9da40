"""Batched NumPy reference of the LSTM layer: the oracle of ``fastlstm.LSTMLayer``.

It has exactly the semantics of ``torch.nn.LSTM`` (without dropout and projections):

* gate order i, f, g, o in the rows of every weight and bias (``G = 4H`` rows);
* two biases, ``bias_ih`` and ``bias_hh``, both simply added;
* an exact sigmoid (overflow-safe, no clipping) and ``tanh``; ``activation`` may replace tanh
  (candidate and cell output, as Keras's argument of that name) by ``relu`` or ``linear``;
* ``num_layers`` stacked layers, layer ``k > 0`` reading the outputs of layer ``k - 1``;
* bidirectional: the reverse direction runs over the sequence backwards (from ``t = T-1`` to
  ``0``) and stores its output at the original time index; the layer output is
  ``[forward, reverse]`` concatenated along the feature axis;
* final states ``h_n, c_n`` of shape ``(L*D, B, H)`` ordered layer0-forward, layer0-reverse,
  layer1-forward, ... (row ``l*D + d``);
* ``batch_first`` changes only the layout of ``x`` and ``y`` (``(B, T, .)``), never of states.

Dims used in the shapes below: ``T`` steps, ``B`` batch, ``I`` input size, ``H`` hidden size,
``G = 4H`` gate rows, ``L`` layers, ``D`` directions (2 if bidirectional else 1), ``I_k`` the
input size of layer ``k`` (``I`` for ``k = 0``, ``D*H`` after).

The code follows the recipe of the fast kernels so that each intermediate has a counterpart there:
one input projection for all steps, then per step the recurrent product and the elementwise gate
math; backward runs the elementwise pass in reverse time and forms the weight gradients with one
product over all steps after the loop. It is written for reading, not speed.
"""

from __future__ import annotations

import numpy as np

from ._names import direction_suffixes, param_names

__all__ = [
    "param_names",
    "init_params",
    "lstm_layer_forward",
    "lstm_layer_backward",
]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def init_params(input_size, hidden_size, num_layers, bidirectional, dtype, rng,
                peepholes=False):
    """Parameters initialised like ``torch.nn.LSTM``: every tensor ~ U(-1/sqrt(H), 1/sqrt(H)).

    Parameters
    ----------
    input_size : int
        Input features ``I``.
    hidden_size : int
        Hidden units ``H``.
    num_layers : int
        Stacked layers ``L``.
    bidirectional : bool
        Whether each layer also runs in reverse.
    dtype : numpy dtype
        float32 or float64.
    rng : numpy.random.Generator
        Source of the draws, taken tensor by tensor in the order of :func:`param_names`
        (each drawn in float64, then converted to ``dtype``).

    Returns
    -------
    dict of str to ndarray
        ``weight_ih_l{k}[_reverse]`` ``(4H, I_k)``, ``weight_hh_l{k}[_reverse]`` ``(4H, H)``,
        ``bias_ih_l{k}[_reverse]`` and ``bias_hh_l{k}[_reverse]`` ``(4H,)``.
    """
    dtype = np.dtype(dtype)
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    bound = 1.0 / np.sqrt(hidden_size)
    shapes = _param_shapes(input_size, hidden_size, num_layers, bidirectional, peepholes)
    return {name: rng.uniform(-bound, bound, size=shape).astype(dtype)
            for name, shape in shapes.items()}


def lstm_layer_forward(x, params, num_layers, bidirectional, h0=None, c0=None,
                       batch_first=False, activation="tanh", clip=0.0, input_forget=False,
                       reverse=False):
    """Run a (stacked, optionally bidirectional) LSTM over a batch of sequences.

    Parameters
    ----------
    x : ndarray, shape (T, B, I), or (B, T, I) if ``batch_first``
        The input sequences, float32 or float64; the computation runs in this dtype.
    params : dict of str to ndarray
        PyTorch's names and shapes (see :func:`init_params`), all of the dtype of ``x``.
    num_layers : int
        Stacked layers ``L``.
    bidirectional : bool
        Whether each layer also runs over the sequence backwards (``D = 2``).
    h0, c0 : ndarray, shape (L*D, B, H), optional
        Initial hidden and cell states (zeros if None), row ``l*D + d`` for layer ``l`` and
        direction ``d`` (0 forward, 1 reverse).
    batch_first : bool
        Layout of ``x`` and ``y``: ``(B, T, .)`` instead of ``(T, B, .)``.
    activation : {'tanh', 'relu', 'linear'}
        Applied to the candidate gate and to the cell in ``h = o * act(c)``.
    clip, input_forget : float, bool
        ONNX's cell extras: every activation's argument clipped to ``[-clip, clip]`` (0: no
        clipping); ``f = 1 - i`` (the f rows unused). Peepholes are used when ``params`` has
        ``peephole_l{k}`` (3H, ONNX order i, o, f): ``i`` and ``f`` see ``p * c_{t-1}``, ``o``
        sees ``p * c_t``.
    reverse : bool
        With one direction, run it over the sequence backwards (ONNX's ``direction="reverse"``).

    Returns
    -------
    y : ndarray, shape (T, B, D*H), or (B, T, D*H) if ``batch_first``
        The last layer's hidden states, ``[forward, reverse]`` along the last axis.
    (h_n, c_n) : tuple of ndarray, each shape (L*D, B, H)
        The final hidden and cell states of every layer and direction (for the reverse
        direction: the states after its last step, which is ``t = 0``).
    cache : dict
        Everything :func:`lstm_layer_backward` needs; also the intermediates the kernels are
        compared against. Keys: ``num_layers``, ``bidirectional``, ``batch_first``, ``params``;
        ``inputs``, a list of the ``L`` layer inputs ``(T, B, I_k)`` (time-major);
        ``steps``, a list of ``L*D`` dicts (row ``l*D + d``) with ``gates`` ``(T, B, 4H)``
        (activated: i, f, g, o), ``cell`` and ``hidden`` ``(T, B, H)`` (the states after the
        step at each time index), ``cell_prev`` and ``hidden_prev`` ``(T, B, H)`` (the states
        the step at each time index started from).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    x = np.asarray(x)
    dtype = _check_float(x, "x")
    if x.ndim != 3:
        raise ValueError(f"x must have 3 dimensions, got shape {x.shape}")
    if 0 in x.shape[:2]:
        raise ValueError(f"x must have at least one step and one sequence, got shape {x.shape}")
    if batch_first:
        x = x.transpose(1, 0, 2)
    seq_len, batch, input_size = x.shape
    num_directions = 2 if bidirectional else 1

    weight_hh = params.get("weight_hh_l0")
    if weight_hh is None:
        raise ValueError("params has no 'weight_hh_l0'")
    hidden_size = weight_hh.shape[1]
    peepholes = "peephole_l0" in params
    expected = _param_shapes(input_size, hidden_size, num_layers, bidirectional, peepholes)
    for name, shape in expected.items():
        if name not in params:
            raise ValueError(f"params has no {name!r}")
        value = params[name]
        if tuple(value.shape) != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {tuple(value.shape)}")
        if value.dtype != dtype:
            raise TypeError(f"{name}: expected dtype {dtype} (the dtype of x), got {value.dtype}")

    state_shape = (num_layers * num_directions, batch, hidden_size)
    h0 = _initial_state(h0, "h0", state_shape, dtype)
    c0 = _initial_state(c0, "c0", state_shape, dtype)

    h_n = np.empty(state_shape, dtype=dtype)
    c_n = np.empty(state_shape, dtype=dtype)
    inputs, steps = [], []
    layer_input = x
    for layer in range(num_layers):
        inputs.append(layer_input)
        outputs = []
        for direction, suffix in enumerate(direction_suffixes(bidirectional)):
            row = layer * num_directions + direction
            backwards = direction == 1 or reverse
            step = _direction_forward(
                layer_input,
                params[f"weight_ih_l{layer}{suffix}"], params[f"weight_hh_l{layer}{suffix}"],
                params[f"bias_ih_l{layer}{suffix}"], params[f"bias_hh_l{layer}{suffix}"],
                h0[row], c0[row], reverse=backwards, activation=activation,
                peephole=params.get(f"peephole_l{layer}{suffix}"), clip=clip,
                input_forget=input_forget)
            steps.append(step)
            last = 0 if backwards else seq_len - 1
            h_n[row] = step["hidden"][last]
            c_n[row] = step["cell"][last]
            outputs.append(step["hidden"])
        layer_input = np.concatenate(outputs, axis=-1)  # (T, B, D*H)

    y = layer_input.transpose(1, 0, 2) if batch_first else layer_input
    cache = {
        "num_layers": num_layers,
        "bidirectional": bidirectional,
        "batch_first": batch_first,
        "activation": activation,
        "clip": clip,
        "input_forget": input_forget,
        "reverse": reverse,
        "peepholes": peepholes,
        "params": params,
        "inputs": inputs,
        "steps": steps,
    }
    return y, (h_n, c_n), cache


def lstm_layer_backward(dy, cache, dh_n=None, dc_n=None):
    """Exact backpropagation through time of :func:`lstm_layer_forward`.

    Parameters
    ----------
    dy : ndarray, shape of ``y``
        Gradient of the loss with respect to the output ``y`` (same layout, same dtype).
    cache : dict
        The third return value of :func:`lstm_layer_forward`.
    dh_n, dc_n : ndarray, shape (L*D, B, H), optional
        Gradients with respect to the final states ``h_n`` and ``c_n`` (zeros if None).

    Returns
    -------
    dx : ndarray, shape of ``x``
        Gradient with respect to the input (same layout as ``x``).
    (dh0, dc0) : tuple of ndarray, each shape (L*D, B, H)
        Gradients with respect to the initial states.
    grads : dict of str to ndarray
        Gradients with respect to every parameter, under the names and shapes of ``params``
        (``bias_ih`` and ``bias_hh`` receive the same gradient, as both are added).
    """
    params = cache["params"]
    num_layers = cache["num_layers"]
    bidirectional = cache["bidirectional"]
    num_directions = 2 if bidirectional else 1
    steps = cache["steps"]
    seq_len, batch, hidden_size = steps[0]["hidden"].shape
    dtype = steps[0]["hidden"].dtype

    dy = np.asarray(dy)
    _check_float(dy, "dy")
    if dy.dtype != dtype:
        raise TypeError(f"dy: expected dtype {dtype}, got {dy.dtype}")
    if dy.ndim != 3:
        raise ValueError(f"dy must have 3 dimensions, got shape {dy.shape}")
    if cache["batch_first"]:
        dy = dy.transpose(1, 0, 2)
    y_shape = (seq_len, batch, num_directions * hidden_size)
    if dy.shape != y_shape:
        raise ValueError(f"dy: expected shape {_layout(y_shape, cache['batch_first'])}, "
                         f"got {_layout(dy.shape, cache['batch_first'])}")
    state_shape = (num_layers * num_directions, batch, hidden_size)
    dh_n = _initial_state(dh_n, "dh_n", state_shape, dtype)
    dc_n = _initial_state(dc_n, "dc_n", state_shape, dtype)

    dh0 = np.empty(state_shape, dtype=dtype)
    dc0 = np.empty(state_shape, dtype=dtype)
    grads = {}
    d_output = dy  # (T, B, D*H): gradient reaching the outputs of the current layer
    for layer in reversed(range(num_layers)):
        layer_input = cache["inputs"][layer]
        d_input = np.zeros_like(layer_input)  # (T, B, I_k): both directions add into it
        for direction, suffix in enumerate(direction_suffixes(bidirectional)):
            row = layer * num_directions + direction
            d_hidden = d_output[:, :, direction * hidden_size:(direction + 1) * hidden_size]
            names = [f"{kind}_l{layer}{suffix}"
                     for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "peephole")]
            (dx_dir, dh0[row], dc0[row], d_weight_ih, d_weight_hh, d_bias,
             d_peephole) = _direction_backward(
                d_hidden, dh_n[row], dc_n[row], layer_input, steps[row],
                params[names[0]], params[names[1]],
                reverse=direction == 1 or cache["reverse"], activation=cache["activation"],
                peephole=params.get(names[4]), input_forget=cache["input_forget"])
            d_input += dx_dir
            grads[names[0]] = d_weight_ih
            grads[names[1]] = d_weight_hh
            grads[names[2]] = d_bias
            grads[names[3]] = d_bias.copy()
            if d_peephole is not None:
                grads[names[4]] = d_peephole
        d_output = d_input

    dx = d_output.transpose(1, 0, 2) if cache["batch_first"] else d_output
    grads = {name: grads[name]
             for name in param_names(num_layers, bidirectional, cache["peepholes"])}
    return dx, (dh0, dc0), grads


# --- one layer, one direction ----------------------------------------------------------------

def _direction_forward(x, weight_ih, weight_hh, bias_ih, bias_hh, h0, c0, reverse,
                       activation="tanh", peephole=None, clip=0.0, input_forget=False):
    """One direction of one layer over the whole sequence.

    Shapes: ``x (T, B, I_k)``, ``weight_ih (4H, I_k)``, ``weight_hh (4H, H)``, biases
    ``(4H,)``, ``h0, c0 (B, H)``, ``peephole (3H,)`` or None. Returns the per-direction dict
    described under ``steps`` in :func:`lstm_layer_forward`, plus ``unclipped``, the masks
    ``(T, B, 4H)`` of the activation arguments inside the clip range; every array is indexed by
    the original time index.
    """
    seq_len, batch, _ = x.shape
    hidden_size = weight_hh.shape[1]
    dtype = x.dtype

    # The input projection of all steps at once: the one big product of the fast kernels.
    x_proj = x @ weight_ih.T + (bias_ih + bias_hh)  # (T, B, 4H)

    gates = np.empty((seq_len, batch, 4 * hidden_size), dtype=dtype)
    unclipped = np.ones_like(gates)
    cell = np.empty((seq_len, batch, hidden_size), dtype=dtype)
    hidden = np.empty_like(cell)
    cell_prev = np.empty_like(cell)
    hidden_prev = np.empty_like(cell)

    act = ACTIVATIONS[activation][0]
    p_i, p_o, p_f = np.split(peephole, 3) if peephole is not None else (0, 0, 0)

    def clipped(z):
        if clip > 0:
            return np.clip(z, -clip, clip), (np.abs(z) < clip).astype(dtype)
        return z, np.ones_like(z)

    h, c = h0, c0
    for t in _time_order(seq_len, reverse):
        pre = x_proj[t] + h @ weight_hh.T  # (B, 4H)
        zi, zf, zg, zo = np.split(pre, 4, axis=-1)  # torch's gate order i, f, g, o
        if peephole is not None:  # (0 * an infinite cell would be NaN without peepholes)
            zi, zf = zi + p_i * c, zf + p_f * c
        zi, mi = clipped(zi)
        zf, mf = clipped(zf)
        zg, mg = clipped(zg)
        i, g = _sigmoid(zi), act(zg)
        f = 1 - i if input_forget else _sigmoid(zf)
        hidden_prev[t], cell_prev[t] = h, c
        c = f * c + i * g
        zo, mo = clipped(zo + p_o * c if peephole is not None else zo)
        o = _sigmoid(zo)
        h = o * act(c)
        gates[t] = np.concatenate((i, f, g, o), axis=-1)
        unclipped[t] = np.concatenate((mi, mf, mg, mo), axis=-1)
        cell[t], hidden[t] = c, h

    return {"gates": gates, "cell": cell, "hidden": hidden,
            "cell_prev": cell_prev, "hidden_prev": hidden_prev, "unclipped": unclipped}


def _direction_backward(d_hidden, dh_last, dc_last, x, step, weight_ih, weight_hh, reverse,
                        activation="tanh", peephole=None, input_forget=False):
    """BPTT of one direction of one layer.

    Shapes: ``d_hidden (T, B, H)`` the gradient reaching this direction's outputs,
    ``dh_last, dc_last (B, H)`` the gradients of its final states, ``x (T, B, I_k)`` its input,
    ``step`` its forward dict. Returns ``dx (T, B, I_k)``, ``dh0, dc0 (B, H)``,
    ``d_weight_ih (4H, I_k)``, ``d_weight_hh (4H, H)``, ``d_bias (4H,)`` and ``d_peephole``
    ``(3H,)`` (None without peepholes).
    """
    seq_len, batch, hidden_size = d_hidden.shape
    d_gates = np.empty_like(step["gates"])  # (T, B, 4H): gradient of the pre-activations
    p_i, p_o, p_f = np.split(peephole, 3) if peephole is not None else (0, 0, 0)
    d_p_i = d_p_o = d_p_f = 0

    act, act_grad = ACTIVATIONS[activation]
    dh, dc = dh_last, dc_last  # gradients flowing into the state after the current step
    for t in reversed(list(_time_order(seq_len, reverse))):
        i, f, g, o = np.split(step["gates"][t], 4, axis=-1)
        mi, mf, mg, mo = np.split(step["unclipped"][t], 4, axis=-1)
        c, c_prev = step["cell"][t], step["cell_prev"][t]
        act_c = act(c)
        dh = dh + d_hidden[t]
        d_o = dh * act_c * o * (1 - o) * mo
        dc = dc + dh * o * act_grad(c) + d_o * p_o  # o sees c_t through its peephole
        d_g = dc * i * act_grad(g, activated=True) * mg
        grad_i, grad_f = dc * g, dc * c_prev
        if input_forget:  # f = 1 - i
            grad_i, grad_f = grad_i - grad_f, np.zeros_like(grad_f)
        d_i = grad_i * i * (1 - i) * mi
        d_f = grad_f * f * (1 - f) * mf
        d_gates[t] = np.concatenate((d_i, d_f, d_g, d_o), axis=-1)
        d_p_i = d_p_i + (d_i * c_prev).sum(axis=0)
        d_p_f = d_p_f + (d_f * c_prev).sum(axis=0)
        d_p_o = d_p_o + (d_o * c).sum(axis=0)
        dh = d_gates[t] @ weight_hh  # (B, H): into the state before this step
        dc = dc * f + d_i * p_i + d_f * p_f

    # The weight gradients as single products over all steps, after the loop.
    d_gates_flat = d_gates.reshape(seq_len * batch, 4 * hidden_size)
    d_weight_ih = d_gates_flat.T @ x.reshape(seq_len * batch, -1)
    d_weight_hh = d_gates_flat.T @ step["hidden_prev"].reshape(seq_len * batch, hidden_size)
    d_bias = d_gates_flat.sum(axis=0)
    dx = d_gates @ weight_ih
    d_peephole = None
    if peephole is not None:
        d_peephole = np.concatenate([np.broadcast_to(d, (hidden_size,))
                                     for d in (d_p_i, d_p_o, d_p_f)]).astype(x.dtype)
    return dx, dh, dc, d_weight_ih, d_weight_hh, d_bias, d_peephole


# --- helpers ---------------------------------------------------------------------------------

def _sigmoid(z):
    """Exact logistic function, without overflow: exp is only taken of ``-|z|``."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _tanh_grad(z, activated=False):
    """tanh'(z); with ``activated`` z is already tanh of the argument."""
    a = z if activated else np.tanh(z)
    return 1 - a ** 2


def _relu(z):
    return np.maximum(z, 0)


def _relu_grad(z, activated=False):
    """relu'(z) as torch and Keras take it: 1 where z > 0, else 0 (also at 0); relu(z) > 0
    exactly where z > 0, so the activated value gives the same."""
    return (z > 0).astype(z.dtype)


def _linear(z):
    return z


def _linear_grad(z, activated=False):
    return np.ones_like(z)


# activation name -> (function, derivative); the names are Keras's.
ACTIVATIONS = {"tanh": (np.tanh, _tanh_grad), "relu": (_relu, _relu_grad),
               "linear": (_linear, _linear_grad)}


def _time_order(seq_len, reverse):
    return range(seq_len - 1, -1, -1) if reverse else range(seq_len)


def _param_shapes(input_size, hidden_size, num_layers, bidirectional, peepholes=False):
    """Name -> shape, in the order of :func:`param_names`."""
    num_directions = 2 if bidirectional else 1
    shapes = {}
    for layer in range(num_layers):
        layer_input_size = input_size if layer == 0 else num_directions * hidden_size
        for suffix in direction_suffixes(bidirectional):
            shapes[f"weight_ih_l{layer}{suffix}"] = (4 * hidden_size, layer_input_size)
            shapes[f"weight_hh_l{layer}{suffix}"] = (4 * hidden_size, hidden_size)
            shapes[f"bias_ih_l{layer}{suffix}"] = (4 * hidden_size,)
            shapes[f"bias_hh_l{layer}{suffix}"] = (4 * hidden_size,)
            if peepholes:
                shapes[f"peephole_l{layer}{suffix}"] = (3 * hidden_size,)
    return shapes


def _check_float(array, name):
    if array.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {array.dtype}")
    return array.dtype


def _initial_state(state, name, shape, dtype):
    if state is None:
        return np.zeros(shape, dtype=dtype)
    state = np.asarray(state)
    if state.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {state.dtype}")
    if state.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {state.shape}")
    return state


def _layout(time_major_shape, batch_first):
    seq_len, batch, features = time_major_shape
    return (batch, seq_len, features) if batch_first else (seq_len, batch, features)
