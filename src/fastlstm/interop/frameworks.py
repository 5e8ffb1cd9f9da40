"""Weights in and out of PyTorch and Keras 3.

* :func:`from_torch` / :func:`to_torch`: ``torch.nn.LSTM`` <-> :class:`fastlstm.LSTMLayer`
  (same names, shapes and semantics, so the weights are copied as they are).
* :func:`from_keras` / :func:`to_keras_weights`: ``keras.layers.LSTM`` (or
  ``Bidirectional(LSTM, merge_mode='concat')``) <-> :class:`fastlstm.LSTMLayer`.
* :func:`regressor_to_keras`: a fitted :class:`fastlstm.LSTMRegressor` as a ``keras.Model`` that
  predicts the same values (standardization and unscaling included).

The mapping between the two layouts (``I`` inputs, ``H`` units, gate order i, f, g/c, o in both)::

    Keras kernel            (I, 4H) = weight_ih.T
    Keras recurrent_kernel  (H, 4H) = weight_hh.T
    Keras bias              (4H,)   = bias_ih + bias_hh

torch and keras are imported inside the functions only: ``import fastlstm.interop`` needs neither.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from .._names import suffix
from ..layer import LSTMLayer

__all__ = ["from_torch", "to_torch", "from_keras", "to_keras_weights", "regressor_to_keras"]


# --- lazy imports --------------------------------------------------------------------------------

def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError("fastlstm.interop needs PyTorch for this: pip install 'fastlstm[torch]' "
                          f"(importing torch failed: {exc})") from exc
    return torch


def _import_keras():
    try:
        import keras
    except ImportError as exc:
        raise ImportError("fastlstm.interop needs Keras 3 for this: pip install 'fastlstm[keras]' "
                          "and a backend (e.g. torch, selected with the environment variable "
                          f"KERAS_BACKEND=torch) (importing keras failed: {exc})") from exc
    major = str(getattr(keras, "__version__", "0")).split(".")[0]
    if not major.isdigit() or int(major) < 3:
        raise ImportError(f"fastlstm.interop needs Keras 3, found keras {keras.__version__}: "
                          "pip install 'fastlstm[keras]'")
    return keras


def _names_of(layer, direction):
    """PyTorch's weight_ih, weight_hh, bias_ih, bias_hh names of one layer and direction."""
    sfx = suffix(layer, direction)
    return tuple(kind + sfx for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def _check_lstm_layer(layer, func):
    if not isinstance(layer, LSTMLayer):
        raise TypeError(f"{func}: expected a fastlstm.LSTMLayer, got {type(layer).__name__}")
    # ONNX's cell extras exist in neither torch nor Keras: refuse rather than drop them.
    for attr, plain in (("peepholes", False), ("clip", None), ("input_forget", False),
                        ("reverse", False)):
        value = getattr(layer, attr, plain)
        if value != plain:
            raise ValueError(f"{func}: the layer has {attr}={value!r}, which PyTorch and Keras "
                             "LSTMs cannot express (export it with fastlstm.to_onnx instead)")


# --- PyTorch -------------------------------------------------------------------------------------

def from_torch(module, dtype=None):
    """A :class:`fastlstm.LSTMLayer` with the configuration and weights of a ``torch.nn.LSTM``.

    Parameters
    ----------
    module : torch.nn.LSTM
        Any ``input_size``, ``hidden_size``, ``num_layers``, ``bidirectional``, ``batch_first``;
        ``bias=False`` gives zero biases. ``proj_size > 0`` is refused (fastlstm has no
        projections). fastlstm has no dropout: a module with ``dropout > 0`` is converted (dropout
        does nothing at inference) with a warning.
    dtype : {None, np.float32, np.float64}
        None: float64 if the module's weights are float64, else float32 (float16/bfloat16 weights
        are widened exactly).

    Returns
    -------
    LSTMLayer
        ``weight_ih_l{k}[_reverse]`` (4H, I_k), ``weight_hh_l{k}[_reverse]`` (4H, H),
        ``bias_ih_l{k}[_reverse]`` and ``bias_hh_l{k}[_reverse]`` (4H,) copied from the module;
        ``layer.forward(x, (h0, c0))`` returns what ``module(x, (h0, c0))`` returns.

    Raises
    ------
    TypeError
        ``module`` is not a ``torch.nn.LSTM``.
    ValueError
        ``proj_size`` is not 0.
    """
    torch = _import_torch()
    if not isinstance(module, torch.nn.LSTM):
        hint = (" (an LSTMCell is one step of one layer; wrap its weights in an nn.LSTM)"
                if isinstance(module, torch.nn.LSTMCell) else "")
        raise TypeError(f"from_torch: expected a torch.nn.LSTM, got {type(module).__name__}{hint}")
    proj_size = getattr(module, "proj_size", 0)
    if proj_size:
        raise ValueError(f"from_torch: proj_size={proj_size} is not supported (fastlstm's LSTM has "
                         "no projection of h); only proj_size=0")
    if module.dropout > 0:
        warnings.warn(f"from_torch: the module has dropout={module.dropout}; fastlstm has no "
                      "dropout, the layer computes the module's inference (eval) forward",
                      UserWarning, stacklevel=2)
    if dtype is None:
        dtype = np.float64 if module.weight_ih_l0.dtype == torch.float64 else np.float32
    layer = LSTMLayer(module.input_size, module.hidden_size, module.num_layers,
                      bidirectional=module.bidirectional, batch_first=module.batch_first,
                      dtype=dtype)
    state = {}
    for name, value in layer.parameters():
        tensor = getattr(module, name, None)
        if tensor is None:  # bias=False
            state[name] = np.zeros(value.shape, layer.dtype)
        else:
            state[name] = tensor.detach().to(device="cpu", dtype=torch.float64).numpy()
    layer.load_state_dict(state)
    return layer


def to_torch(layer):
    """A ``torch.nn.LSTM`` with the configuration and weights of a :class:`fastlstm.LSTMLayer`.

    Parameters
    ----------
    layer : LSTMLayer
        Its ``activation`` must be ``'tanh'`` (torch.nn.LSTM has no other).

    Returns
    -------
    torch.nn.LSTM
        Same ``input_size``, ``hidden_size``, ``num_layers``, ``bidirectional``, ``batch_first``,
        ``bias=True``, ``dropout=0``; float32 or float64 parameters as the layer's dtype, copied
        (not shared). The module is in its default (training) mode, which with dropout 0 computes
        the same forward as eval mode.

    Raises
    ------
    TypeError
        ``layer`` is not an LSTMLayer.
    ValueError
        ``activation`` is not ``'tanh'``.
    """
    _check_lstm_layer(layer, "to_torch")
    if layer.activation != "tanh":
        raise ValueError(f"to_torch: activation={layer.activation!r} is not supported: "
                         "torch.nn.LSTM always uses tanh")
    torch = _import_torch()
    tdtype = torch.float64 if layer.dtype == np.float64 else torch.float32
    module = torch.nn.LSTM(layer.input_size, layer.hidden_size, layer.num_layers, bias=True,
                           batch_first=layer.batch_first, bidirectional=layer.bidirectional,
                           dtype=tdtype)
    module.load_state_dict({name: torch.from_numpy(value.copy())
                            for name, value in layer.parameters()})
    return module


# --- Keras ---------------------------------------------------------------------------------------

_KERAS_ACTIVATIONS = ("tanh", "relu", "linear")


def _keras_activation(keras, fn, attr):
    """The name of a Keras activation function among ours, or a ValueError naming it."""
    allowed = ("sigmoid",) if attr == "recurrent_activation" else _KERAS_ACTIVATIONS
    for name in allowed:
        if fn is keras.activations.get(name):
            return name
    shown = getattr(fn, "__name__", repr(fn))
    raise ValueError(f"from_keras: {attr}={shown!r} is not supported; expected one of "
                     f"{list(allowed)}")


def _warn_keras_dropout(lstm):
    for attr in ("dropout", "recurrent_dropout"):
        rate = float(getattr(lstm, attr, 0.0) or 0.0)
        if rate > 0:
            warnings.warn(f"from_keras: the layer has {attr}={rate}; fastlstm has no dropout, the "
                          "layer computes Keras's inference forward", UserWarning, stacklevel=4)


def _keras_lstm_weights(keras, lstm, allow_go_backwards=False):
    """(kernel, recurrent_kernel, bias, activation) of one built keras.layers.LSTM."""
    if not lstm.built:
        raise ValueError(f"from_keras: the Keras layer {lstm.name!r} is not built (no weights "
                         "yet): call it on an input or build((None, T, input_size)) first")
    if lstm.go_backwards and not allow_go_backwards:
        raise ValueError(f"from_keras: go_backwards=True (layer {lstm.name!r}) is not supported: "
                         "it runs the sequence backwards and returns the outputs in reversed "
                         "order; use keras.layers.Bidirectional or reverse the input yourself")
    activation = _keras_activation(keras, lstm.activation, "activation")
    _keras_activation(keras, lstm.recurrent_activation, "recurrent_activation")
    _warn_keras_dropout(lstm)
    weights = lstm.get_weights()
    kernel, recurrent = weights[0], weights[1]
    bias = weights[2] if lstm.use_bias else np.zeros(kernel.shape[1], kernel.dtype)
    return kernel, recurrent, bias, activation


def _check_weight_triple(kernel, recurrent, bias, where):
    kernel, recurrent = np.asarray(kernel), np.asarray(recurrent)
    if recurrent.ndim != 2 or recurrent.shape[1] != 4 * recurrent.shape[0] or recurrent.size == 0:
        raise ValueError(f"from_keras: {where}recurrent_kernel: expected shape (H, 4H), got "
                         f"{recurrent.shape}")
    H = recurrent.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != 4 * H or kernel.shape[0] == 0:
        raise ValueError(f"from_keras: {where}kernel: expected shape (input_size, {4 * H}) for "
                         f"H={H}, got {kernel.shape}")
    bias = np.zeros(4 * H) if bias is None else np.asarray(bias)
    if bias.shape != (4 * H,):
        raise ValueError(f"from_keras: {where}bias: expected shape ({4 * H},), got {bias.shape}")
    return kernel, recurrent, bias


def from_keras(layer_or_weights, *, input_size=None, activation=None, dtype=np.float32):
    """A :class:`fastlstm.LSTMLayer` (``batch_first=True``) with the weights of a Keras 3 LSTM.

    Parameters
    ----------
    layer_or_weights : keras.layers.LSTM, keras.layers.Bidirectional or list of arrays
        * a built ``keras.layers.LSTM``: its ``activation`` (tanh, relu or linear) is kept,
          ``recurrent_activation`` must be sigmoid, ``use_bias=False`` gives zero biases,
          ``go_backwards=True`` is refused (Keras then returns the outputs in reversed order,
          which LSTMLayer does not do). ``return_sequences``, ``return_state`` and ``stateful`` do
          not change the weights and are ignored; dropout does nothing at inference (a warning is
          issued: fastlstm has no dropout).
        * a built ``keras.layers.Bidirectional`` wrapping an LSTM with ``merge_mode='concat'``
          (other merge modes are refused): a bidirectional layer, the forward LSTM as direction 0,
          the backward one as ``_reverse``. Both must have the same units and activation.
        * a list of arrays ``[kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,)]``, as
          ``keras.layers.LSTM.get_weights()`` returns them (``[kernel, recurrent_kernel]`` without
          bias), or the 6 (4 without biases) arrays of ``Bidirectional.get_weights()``, forward
          layer first: a bidirectional layer. Keras is not needed for this form.
    input_size : int, optional
        A check: the kernel must have this many rows.
    activation : {'tanh', 'relu', 'linear'}, optional
        For a list of arrays, the activation of the layer they come from (default ``'tanh'``).
        For a Keras layer, the layer's own is used; a different value here is an error.
    dtype : {np.float32, np.float64}, default np.float32

    Returns
    -------
    LSTMLayer
        One layer (``num_layers=1``), ``batch_first=True``: ``weight_ih = kernel.T`` (4H, I),
        ``weight_hh = recurrent_kernel.T`` (4H, H), ``bias_ih = bias``, ``bias_hh = 0``.
        ``layer.forward(x)[0]`` for ``x (B, T, I)`` is Keras's output with
        ``return_sequences=True`` (B, T, D*H); with ``return_sequences=False`` Keras returns
        ``h_n[-1]`` (B, H), or ``concatenate([h_n[0], h_n[1]], axis=1)`` when bidirectional.
        A stack of Keras LSTMs converts layer by layer.

    Raises
    ------
    TypeError
        Not a Keras LSTM, a Bidirectional LSTM or a list of arrays.
    ValueError
        An unsupported attribute (``activation``, ``recurrent_activation``, ``go_backwards``,
        ``merge_mode``), an unbuilt layer, weights of the wrong shapes or ``input_size``
        mismatch.
    """
    if isinstance(layer_or_weights, (list, tuple)):
        arrays = list(layer_or_weights)
        if len(arrays) not in (2, 3, 4, 6):
            raise ValueError("from_keras: expected [kernel, recurrent_kernel, bias] (2 arrays "
                             "without bias; 6 or 4 for a Bidirectional layer), got a list of "
                             f"{len(arrays)} arrays")
        if len(arrays) in (4, 6):
            half = len(arrays) // 2
            directions = [arrays[:half], arrays[half:]]
        else:
            directions = [arrays]
        act = "tanh" if activation is None else activation
        triples = []
        for d, w in enumerate(directions):
            where = ("" if len(directions) == 1 else ("forward " if d == 0 else "backward "))
            triples.append(_check_weight_triple(w[0], w[1], w[2] if len(w) == 3 else None, where))
    else:
        keras = _import_keras()
        obj = layer_or_weights
        if isinstance(obj, keras.layers.Bidirectional):
            fwd, bwd = obj.forward_layer, obj.backward_layer
            for part in (fwd, bwd):
                if not isinstance(part, keras.layers.LSTM):
                    raise TypeError("from_keras: expected Bidirectional to wrap a "
                                    f"keras.layers.LSTM, got {type(part).__name__}")
            if obj.merge_mode != "concat":
                raise ValueError(f"from_keras: merge_mode={obj.merge_mode!r} is not supported; "
                                 "only merge_mode='concat' (LSTMLayer concatenates "
                                 "[forward, reverse])")
            if fwd.go_backwards or not bwd.go_backwards:
                raise ValueError("from_keras: go_backwards=True on the forward layer of a "
                                 "Bidirectional is not supported (its directions are swapped)")
            if fwd.units != bwd.units:
                raise ValueError(f"from_keras: the forward layer has units={fwd.units}, the "
                                 f"backward one units={bwd.units}; LSTMLayer needs one size")
            parts = [_keras_lstm_weights(keras, fwd),
                     _keras_lstm_weights(keras, bwd, allow_go_backwards=True)]
            if parts[0][3] != parts[1][3]:
                raise ValueError(f"from_keras: the forward layer has activation={parts[0][3]!r}, "
                                 f"the backward one activation={parts[1][3]!r}; LSTMLayer "
                                 "needs one")
        elif isinstance(obj, keras.layers.LSTM):
            parts = [_keras_lstm_weights(keras, obj)]
        else:
            raise TypeError("from_keras: expected a keras.layers.LSTM, a "
                            "keras.layers.Bidirectional(LSTM) or a list [kernel, "
                            f"recurrent_kernel, bias], got {type(obj).__name__}")
        act = parts[0][3]
        if activation is not None and activation != act:
            raise ValueError(f"from_keras: activation={activation!r} was given but the Keras "
                             f"layer has activation={act!r}")
        triples = [_check_weight_triple(k, r, b, "") for k, r, b, _ in parts]
    kernel0 = triples[0][0]
    I, H = kernel0.shape[0], triples[0][1].shape[0]
    if len(triples) == 2 and triples[1][0].shape != kernel0.shape:
        raise ValueError(f"from_keras: backward kernel: expected shape {kernel0.shape} like the "
                         f"forward one, got {triples[1][0].shape}")
    if input_size is not None and input_size != I:
        raise ValueError(f"from_keras: input_size={input_size!r} but the kernel has shape "
                         f"{kernel0.shape} ({I} inputs)")
    layer = LSTMLayer(I, H, 1, bidirectional=len(triples) == 2, batch_first=True, dtype=dtype,
                      activation=act)
    state = {}
    for d, (kernel, recurrent, bias) in enumerate(triples):
        w_ih, w_hh, b_ih, b_hh = _names_of(0, d)
        state[w_ih], state[w_hh] = kernel.T, recurrent.T
        state[b_ih], state[b_hh] = bias, np.zeros(4 * H)
    layer.load_state_dict(state)
    return layer


def mask_lengths(mask=None, *, x=None, mask_value=0.0):
    """The ``lengths`` of a right-padded batch from Keras's mask, for
    ``layer.forward(x, lengths=...)`` on a layer converted with :func:`from_keras`.

    Give either ``mask`` (B, T) booleans, true at the real steps (what a Keras layer's
    ``compute_mask`` returns; for ``Embedding(mask_zero=True)`` that is ``ids != 0``), or the
    batch ``x`` (B, T, F): as ``keras.layers.Masking(mask_value)`` does, a step is masked when
    every feature equals ``mask_value``.

    Keras runs masked steps by carrying the state over them; on a right-padded batch that is
    exactly a sequence ending at its last real step, so ``h_n``, ``c_n`` (Keras's final state
    and its output with ``return_sequences=False``) agree. The per-step outputs differ past
    the length: fastlstm's are zeros (PyTorch's and ONNX's convention), a Keras ``LSTM``
    repeats its last real output, a ``Bidirectional`` one gives zeros. A mask with a real
    step after a masked one (left padding, holes) has no lengths: ValueError.
    """
    if (mask is None) == (x is None):
        raise TypeError("mask_lengths: give mask (B, T) or x (B, T, F), not both or neither")
    if x is not None:
        arr = np.asarray(x)
        if arr.ndim != 3:
            raise ValueError(f"x: expected shape (B, T, F), got {arr.shape}")
        keep = np.any(arr != mask_value, axis=-1)
    else:
        keep = np.asarray(mask)
        if keep.dtype.kind not in "biu":
            raise TypeError(f"mask must be booleans, got dtype {keep.dtype}")
        if keep.ndim != 2:
            raise ValueError(f"mask: expected shape (B, T), got {keep.shape}")
        keep = keep.astype(bool)
    lengths = keep.sum(axis=1)
    T = keep.shape[1]
    holes = keep != (np.arange(T)[None, :] < lengths[:, None])
    if holes.any():
        b, t = np.argwhere(holes)[0]
        raise ValueError(f"mask: sequence {b} has a real step after a masked one (step {t}); "
                         "lengths describe right-padded batches only")
    return lengths.astype(np.int64)


def to_keras_weights(layer, layer_index=None):
    """The weights of one layer of an LSTMLayer, as ``keras_layer.set_weights`` takes them.

    Parameters
    ----------
    layer : LSTMLayer
    layer_index : int, optional
        Which stacked layer to export. A Keras LSTM holds one layer, so for
        ``num_layers > 1`` it is required: export layer ``k`` into the ``k``-th of a stack of Keras
        LSTMs (``return_sequences=True`` on all but the last). Optional when ``num_layers == 1``.

    Returns
    -------
    list of ndarray, in the layer's dtype
        Unidirectional: ``[kernel (I_k, 4H), recurrent_kernel (H, 4H), bias (4H,)]`` with
        ``kernel = weight_ih.T``, ``recurrent_kernel = weight_hh.T``,
        ``bias = bias_ih + bias_hh``, for ``keras.layers.LSTM(H, activation=layer.activation)``.
        Bidirectional: the forward direction's three arrays followed by the reverse direction's,
        the order of ``keras.layers.Bidirectional(LSTM(H), merge_mode='concat').get_weights()``.
        The activation is not part of the weights: build the Keras layer with
        ``activation=layer.activation``.

    Raises
    ------
    TypeError
        ``layer`` is not an LSTMLayer, ``layer_index`` not an integer.
    ValueError
        ``num_layers > 1`` without ``layer_index``, or ``layer_index`` out of range.
    """
    _check_lstm_layer(layer, "to_keras_weights")
    L = layer.num_layers
    if layer_index is None:
        if L > 1:
            raise ValueError(f"to_keras_weights: num_layers={L}: a Keras LSTM holds one layer; "
                             "export each with to_keras_weights(layer, layer_index=k) for k in "
                             f"range({L}) into a stack of Keras LSTMs (return_sequences=True on "
                             "all but the last)")
        layer_index = 0
    if isinstance(layer_index, (bool, np.bool_)) or not isinstance(layer_index, numbers.Integral):
        raise TypeError(f"to_keras_weights: layer_index must be an integer, got "
                        f"{type(layer_index).__name__} {layer_index!r}")
    if not 0 <= layer_index < L:
        raise ValueError(f"to_keras_weights: layer_index={layer_index} out of range for "
                         f"num_layers={L}")
    params = dict(layer.parameters())
    out = []
    for d in range(layer.num_directions):
        w_ih, w_hh, b_ih, b_hh = _names_of(int(layer_index), d)
        out += [np.ascontiguousarray(params[w_ih].T), np.ascontiguousarray(params[w_hh].T),
                params[b_ih] + params[b_hh]]
    return out


def regressor_to_keras(est):
    """A ``keras.Model`` that predicts what a fitted :class:`fastlstm.LSTMRegressor` predicts.

    Parameters
    ----------
    est : LSTMRegressor, fitted

    Returns
    -------
    keras.Model
        Layers (all in the estimator's dtype, float32 or float64):

        * input ``(None, T, F)`` (any number of steps), or ``(None, T)`` followed by a
          ``Reshape((T, 1))`` when the estimator was fitted on 2-D ``X (n, T)``;
        * ``Normalization(mean=x_mean_, variance=x_scale_**2)`` (name ``"standardize"``), or
          ``Rescaling(scale=1/x_scale_, offset=-x_mean_/x_scale_)`` under the same name when
          Normalization would not compute the same: if a scale is below Keras's epsilon (which
          Normalization clamps it to), and for float64 (``maximum(sqrt(variance), epsilon)``
          is promoted to float32, see below);
        * ``num_layers`` LSTMs (``activation`` of the estimator, ``return_sequences=True`` on
          all but the last), each in ``Bidirectional(..., merge_mode='concat')`` if
          bidirectional;
        * ``Dense(n_outputs_)``, the head;
        * ``Rescaling(scale=y_scale_, offset=y_mean_)`` (name ``"unscale"``).

        ``model.predict(X)`` has shape ``(n, n_outputs_)`` always: where the estimator was fitted
        on 1-D ``y`` its ``predict`` returns ``(n,)``, the model ``(n, 1)``. Only Keras's own
        layers are used, so ``model.save("m.keras")`` / ``keras.models.load_model`` work.
        A float64 estimator gives a model with float64 layers and weights, but Keras 3 is not
        float64 end to end: ``model.predict`` casts float inputs to ``keras.config.floatx()``
        (float32 by default; ``model(X)`` does not), and outside the TensorFlow backend its
        type promotion maps float64 to float32 (``keras.backend.result_type("float64",
        "float64") == "float32"``), so e.g. ``Dense``'s product is computed in float32: expect
        agreement to about 1e-7 relative, not 1e-15.

    Raises
    ------
    TypeError
        ``est`` is not an LSTMRegressor.
    sklearn.exceptions.NotFittedError
        ``est`` is not fitted.
    """
    try:
        from sklearn.utils.validation import check_is_fitted

        from ..regressor import LSTMRegressor
    except ImportError as exc:  # without scikit-learn there is no LSTMRegressor to convert
        raise TypeError(f"regressor_to_keras: expected a fitted fastlstm.LSTMRegressor, got "
                        f"{type(est).__name__}") from exc
    if not isinstance(est, LSTMRegressor):
        raise TypeError(f"regressor_to_keras: expected a fitted fastlstm.LSTMRegressor, got "
                        f"{type(est).__name__}")
    check_is_fitted(est, "lstm_")
    keras = _import_keras()
    lstm, head = est.lstm_, est.head_
    dtype = np.dtype(lstm.dtype).name
    F = lstm.input_size
    if est.x_ndim_ == 2:
        T = est.n_features_in_
        inputs = keras.Input((T,), dtype=dtype, name="windows")
        x = keras.layers.Reshape((T, 1), dtype=dtype, name="steps")(inputs)
    else:
        inputs = keras.Input((None, F), dtype=dtype, name="windows")
        x = inputs
    x_mean = np.asarray(est.x_mean_, np.float64)
    x_scale = np.asarray(est.x_scale_, np.float64)
    if dtype == "float32" and np.all(x_scale >= keras.backend.epsilon()):
        x = keras.layers.Normalization(mean=x_mean, variance=x_scale ** 2, dtype=dtype,
                                       name="standardize")(x)
    else:
        x = keras.layers.Rescaling(scale=1.0 / x_scale, offset=-x_mean / x_scale, dtype=dtype,
                                   name="standardize")(x)
    rnns = []
    for k in range(lstm.num_layers):
        rnn = keras.layers.LSTM(lstm.hidden_size, activation=lstm.activation,
                                return_sequences=k < lstm.num_layers - 1, dtype=dtype,
                                name=f"lstm_{k}")
        if lstm.bidirectional:
            rnn = keras.layers.Bidirectional(rnn, merge_mode="concat", dtype=dtype,
                                             name=f"bidirectional_{k}")
        x = rnn(x)
        rnns.append(rnn)
    dense = keras.layers.Dense(head.out_features, dtype=dtype, name="head")
    x = dense(x)
    outputs = keras.layers.Rescaling(scale=np.asarray(est.y_scale_, np.float64),
                                     offset=np.asarray(est.y_mean_, np.float64), dtype=dtype,
                                     name="unscale")(x)
    model = keras.Model(inputs, outputs, name="fastlstm_regressor")
    for k, rnn in enumerate(rnns):
        rnn.set_weights(to_keras_weights(lstm, layer_index=k))
    dense.set_weights([np.ascontiguousarray(head.weight.T), head.bias.copy()])
    return model
