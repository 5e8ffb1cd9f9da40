"""ONNX export and import: ``fastlstm.to_onnx`` and ``fastlstm.from_onnx``.

Layouts (ONNX operator LSTM, opset 14): ``W (D, 4H, I)``, ``R (D, 4H, H)``, ``B (D, 8H)`` (the
input biases, then the recurrent ones), ``P (D, 3H)``, gate order i, o, f, c (fastlstm's rows are
i, f, g, o; c is g); peepholes in the order i, o, f, which ``LSTMLayer`` keeps as is.

Exported graphs compute in float32 (ONNX Runtime has no float64 LSTM kernel): a float64 model is
exported with its weights rounded to float32.
"""

from __future__ import annotations

import os

import numpy as np

from .._names import suffix
from .npz import _is_regressor

__all__ = ["to_onnx", "from_onnx", "OPSET"]

OPSET = 14  # LSTM with `layout` (batch first) appeared in opset 14
_IR_VERSION = 8  # readable by every onnxruntime since 1.10
_TO_ONNX = [0, 3, 1, 2]    # ONNX block k comes from fastlstm block _TO_ONNX[k]: i, o, f, c
_FROM_ONNX = [0, 2, 3, 1]  # fastlstm block k comes from ONNX block _FROM_ONNX[k]: i, f, g, o
_ACT_TO_ONNX = {"tanh": "Tanh", "relu": "Relu", "linear": "Affine"}


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export and import need the onnx package: "
                          "pip install 'fastlstm[onnx]'") from None
    return onnx


def _blocks(a, order, H):
    """Reorder the 4 gate blocks of the first axis of ``a`` (4H, ...)."""
    parts = np.split(a, 4, axis=0)
    return np.concatenate([parts[k] for k in order], axis=0)


# --- export ------------------------------------------------------------------------------------

def to_onnx(obj, path=None, *, state_inputs=False, lengths=False):
    """An ONNX model computing ``obj``: an ``LSTMLayer`` (outputs ``y``, ``h_n``, ``c_n`` as
    ``layer.forward(x)`` returns them) or a fitted ``LSTMRegressor`` (output ``y``, as
    ``predict``, standardization included).

    The graph input is the sequence batch ``x`` (dynamic batch and sequence length), and the
    initial states are zeros. With ``state_inputs=True`` an ``LSTMLayer``'s graph also takes
    ``h0`` and ``c0`` ``(L*D, B, H)`` as required inputs (``layer.forward(x, (h0, c0))``).
    (Optional inputs with zero defaults would be initializers that are also graph inputs,
    which ONNX Runtime warns about in every session.) With ``lengths=True`` it also takes
    ``lengths`` (B,) int32, every LSTM node's ``sequence_lens``, as
    ``layer.forward(x, lengths=lengths)`` (ONNX Runtime refuses a length of 0, which
    fastlstm accepts). Written to ``path`` when given.

    Returns
    -------
    onnx.ModelProto
    """
    onnx = _onnx()
    from ..layer import LSTMLayer

    if isinstance(obj, LSTMLayer):
        model = _export_layer(onnx, obj, bool(state_inputs), bool(lengths))
    elif lengths:
        raise ValueError("lengths: only an LSTMLayer's graph takes lengths (a regressor's "
                         "windows have the length it was fitted on)")
    elif _is_regressor(obj) and hasattr(obj, "lstm_"):
        model = _export_regressor(onnx, obj)
    elif _is_regressor(obj):
        raise ValueError("obj: the LSTMRegressor is not fitted; fit it before exporting")
    else:
        raise TypeError(f"obj: expected fastlstm.LSTMLayer or a fitted LSTMRegressor, got "
                        f"{type(obj).__name__}")
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save(model, os.fspath(path))
    return model


class _Graph:
    def __init__(self, onnx):
        self.onnx = onnx
        self.h = onnx.helper
        self.nodes, self.inits, self.counter = [], [], 0

    def name(self, base):
        self.counter += 1
        return f"{base}_{self.counter}"

    def const(self, base, array):
        name = self.name(base)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, n_out=1, base=None, **attrs):
        outs = [self.name(base or op.lower()) for _ in range(n_out)]
        self.nodes.append(self.h.make_node(op, inputs, outs, **attrs))
        return outs if n_out > 1 else outs[0]


def _lstm_stack(g, layer, x, h_all, c_all, lens=""):
    """The LSTM nodes of ``layer`` reading ``x`` (in the layer's layout); returns
    (y, [Y_h], [Y_c]) names. The nodes use layout 0 (time major), which every runtime
    implements (onnxruntime refuses layout 1); batch-first data is transposed at the ends."""
    H, D = layer.hidden_size, layer.num_directions
    layout = 0
    if layer.batch_first:
        x = g.node("Transpose", [x], base="x_tm", perm=[1, 0, 2])
    direction = "bidirectional" if D == 2 else ("reverse" if layer.reverse else "forward")
    hs, cs = [], []
    inp = x
    for k in range(layer.num_layers):
        W, R, B, P = [], [], [], []
        for d in range(D):
            sfx = suffix(k, d)
            p = {n: np.asarray(v, np.float64) for n, v in layer.parameters() if n.endswith(sfx)}
            W.append(_blocks(p["weight_ih" + sfx], _TO_ONNX, H))
            R.append(_blocks(p["weight_hh" + sfx], _TO_ONNX, H))
            B.append(np.concatenate([_blocks(p["bias_ih" + sfx], _TO_ONNX, H),
                                     _blocks(p["bias_hh" + sfx], _TO_ONNX, H)]))
            if layer.peepholes:
                P.append(p["peephole" + sfx])
        attrs = {"hidden_size": H, "direction": direction}
        if layer.activation != "tanh":
            act = _ACT_TO_ONNX[layer.activation]
            attrs["activations"] = ["Sigmoid", act, act] * D
            if act == "Affine":  # y = 1 * x + 0; only Affine consumes alphas and betas
                attrs["activation_alpha"] = [1.0, 1.0] * D
                attrs["activation_beta"] = [0.0, 0.0] * D
        if layer.clip is not None:
            attrs["clip"] = float(layer.clip)
        if layer.input_forget:
            attrs["input_forget"] = 1
        start = g.const("start", np.array([k * D], np.int64))
        end = g.const("end", np.array([(k + 1) * D], np.int64))
        axis0 = g.const("axis", np.array([0], np.int64))
        h0 = g.node("Slice", [h_all, start, end, axis0], base="h0")
        c0 = g.node("Slice", [c_all, start, end, axis0], base="c0")
        ins = [inp, g.const("W", np.stack(W).astype(np.float32)),
               g.const("R", np.stack(R).astype(np.float32)),
               g.const("B", np.stack(B).astype(np.float32)), lens, h0, c0]
        if P:
            ins.append(g.const("P", np.stack(P).astype(np.float32)))
        y, y_h, y_c = g.node("LSTM", ins, 3, f"lstm{k}", **attrs)
        hs.append(y_h)
        cs.append(y_c)
        y = g.node("Transpose", [y], base="y", perm=[0, 2, 1, 3])  # (T, D, B, H) -> (T, B, D, H)
        inp = g.node("Reshape", [y, g.const("shape", np.array([0, 0, -1], np.int64))],
                     base="y")  # -> (T, B, D*H)
    if layer.batch_first:
        inp = g.node("Transpose", [inp], base="y_bf", perm=[1, 0, 2])
    return inp, hs, cs


def _zero_states(g, layer, x):
    """Initial states h0, c0 (L*D, B, H) of zeros (initializers), broadcast to the batch of x."""
    L = layer.num_layers * layer.num_directions
    H = layer.hidden_size
    zeros = np.zeros((L, 1, H), np.float32)
    g.inits.append(g.onnx.numpy_helper.from_array(zeros, "h0"))
    g.inits.append(g.onnx.numpy_helper.from_array(zeros, "c0"))
    shape = g.node("Shape", [x], base="x_shape")
    batch = g.node("Gather", [shape, g.const("batch_axis", np.array([0 if layer.batch_first
                                                                     else 1], np.int64))],
                   base="batch", axis=0)
    full = g.node("Concat", [g.const("l", np.array([L], np.int64)), batch,
                             g.const("h", np.array([H], np.int64))], base="state_shape", axis=0)
    return (g.node("Expand", ["h0", full], base="h0_full"),
            g.node("Expand", ["c0", full], base="c0_full"))


def _model(g, inputs, outputs, name, layer):
    h = g.h
    graph = h.make_graph(g.nodes, name, inputs, outputs, initializer=g.inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)],
                         producer_name="fastlstm")
    model.ir_version = _IR_VERSION
    # The nodes run time major; from_onnx restores the layer's own layout from this.
    h.set_model_props(model, {"fastlstm.batch_first": str(int(layer.batch_first))})
    return model


def _export_layer(onnx, layer, state_inputs, lengths):
    g = _Graph(onnx)
    F, H = onnx.TensorProto.FLOAT, layer.hidden_size
    L, D = layer.num_layers * layer.num_directions, layer.num_directions
    seq = ["batch", "steps"] if layer.batch_first else ["steps", "batch"]
    vi = g.h.make_tensor_value_info
    inputs = [vi("x", F, seq + [layer.input_size])]
    if state_inputs:
        h_all, c_all = "h0", "c0"
        inputs += [vi("h0", F, [L, "batch", H]), vi("c0", F, [L, "batch", H])]
    else:
        h_all, c_all = _zero_states(g, layer, "x")
    if lengths:
        inputs.append(vi("lengths", onnx.TensorProto.INT32, ["batch"]))
    y, hs, cs = _lstm_stack(g, layer, "x", h_all, c_all, "lengths" if lengths else "")
    g.nodes.append(g.h.make_node("Identity", [y], ["y"]))
    g.nodes.append(g.h.make_node("Concat", hs, ["h_n"], axis=0))
    g.nodes.append(g.h.make_node("Concat", cs, ["c_n"], axis=0))
    outputs = [vi("y", F, seq + [D * H]), vi("h_n", F, [L, "batch", H]),
               vi("c_n", F, [L, "batch", H])]
    return _model(g, inputs, outputs, "fastlstm_LSTMLayer", layer)


def _export_regressor(onnx, est):
    g = _Graph(onnx)
    F = onnx.TensorProto.FLOAT
    layer = est.lstm_
    D, H, k = layer.num_directions, layer.hidden_size, est.n_outputs_
    x = "x"
    if est.x_ndim_ == 2:  # (n, T): one feature per step
        x = g.node("Unsqueeze", [x, g.const("axes", np.array([2], np.int64))], base="x3")
    x = g.node("Sub", [x, g.const("x_mean", est.x_mean_.astype(np.float32))], base="x")
    x = g.node("Div", [x, g.const("x_scale", est.x_scale_.astype(np.float32))], base="x")
    h_all, c_all = _zero_states(g, layer, x)
    _, hs, _ = _lstm_stack(g, layer, x, h_all, c_all)
    # the last layer's final states [forward, reverse]: (D, B, H) -> (B, D*H)
    last = g.node("Transpose", [hs[-1]], base="last", perm=[1, 0, 2])
    last = g.node("Reshape", [last, g.const("shape", np.array([0, -1], np.int64))], base="last")
    out = g.node("Gemm", [last, g.const("head_w", est.head_.weight.astype(np.float32)),
                          g.const("head_b", est.head_.bias.astype(np.float32))], base="head",
                 transB=1)
    out = g.node("Mul", [out, g.const("y_scale", est.y_scale_.astype(np.float32))], base="y")
    out = g.node("Add", [out, g.const("y_mean", est.y_mean_.astype(np.float32))], base="y")
    if est.y_ndim_ == 1:
        out = g.node("Squeeze", [out, g.const("axes", np.array([1], np.int64))], base="y")
    g.nodes.append(g.h.make_node("Identity", [out], ["y"]))
    # h0/c0 stay constants (zeros) for a regressor: its predictions start from zero states
    vi = g.h.make_tensor_value_info
    x_shape = ["batch", "steps", layer.input_size] if est.x_ndim_ == 3 else \
        ["batch", est.n_features_in_]
    y_shape = ["batch"] if est.y_ndim_ == 1 else ["batch", k]
    return _model(g, [vi("x", F, x_shape)], [vi("y", F, y_shape)], "fastlstm_LSTMRegressor",
                  layer)


# --- import ------------------------------------------------------------------------------------

def from_onnx(model_or_path, return_state=False, return_lengths=False):
    """An ``LSTMLayer`` computing the LSTM nodes of an ONNX graph.

    Every LSTM node's ``W``, ``R`` (and ``B``, ``P``, ``initial_h``, ``initial_c`` when given)
    must be initializers; several LSTM nodes become the layers of one ``LSTMLayer``, in graph
    order (they must share direction, layout, hidden size and attributes, each reading the
    previous one's output). Supported: ``direction`` forward, reverse, bidirectional; ``layout``
    0 and 1; biases; initial states; peepholes; ``clip``; ``input_forget``; activations Sigmoid
    for the gates and Tanh, Relu or Affine(1, 0) for the cell; ``sequence_lens`` as a graph
    input (pass the lengths to ``forward(x, lengths=...)``, which has ONNX's semantics: zero
    outputs past a length, ``Y_h``, ``Y_c`` at each sequence's own last step) or as an
    initializer (returned with ``return_lengths``). Anything else is refused with an error
    naming the attribute and its value.

    Parameters
    ----------
    model_or_path : onnx.ModelProto, bytes or path
    return_state : bool
        Also return the initial states ``(h0, c0)`` of shape ``(L*D, B, H)`` (None when the
        graph has none).
    return_lengths : bool
        Also return (last) the graph's ``sequence_lens``: its values (B,) when they are a
        constant, the name of the graph input when they come at run time, None when the
        graph has none. A graph with ``sequence_lens`` is refused without it: the layer alone
        would run every sequence over every step, silently unlike the graph.
    """
    onnx = _onnx()
    from onnx import numpy_helper

    from ..layer import LSTMLayer

    if isinstance(model_or_path, onnx.ModelProto):
        model = model_or_path
    elif isinstance(model_or_path, (bytes, bytearray)):
        model = onnx.load_from_string(bytes(model_or_path))
    else:
        model = onnx.load(os.fspath(model_or_path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type == "LSTM"]
    if not nodes:
        raise ValueError("model: the graph has no LSTM node")
    specs = [_node_spec(onnx, n, inits) for n in nodes]
    first = specs[0]
    for k, spec in enumerate(specs[1:], start=1):
        for key in ("direction", "layout", "hidden_size", "activation", "clip", "input_forget",
                    "peepholes"):
            if spec[key] != first[key]:
                raise ValueError(f"LSTM node {nodes[k].name or k}: attribute {key}="
                                 f"{spec[key]!r} differs from the first node's {first[key]!r}; "
                                 "one LSTMLayer needs the same for every layer")
    D = 2 if first["direction"] == "bidirectional" else 1
    H = first["hidden_size"]
    dtype = np.float64 if first["W"].dtype == np.float64 else np.float32
    props = {p.key: p.value for p in model.metadata_props}
    batch_first = first["layout"] == 1 or props.get("fastlstm.batch_first") == "1"
    layer = LSTMLayer(first["W"].shape[2], H, len(specs), bidirectional=D == 2,
                      batch_first=batch_first, dtype=dtype,
                      activation=first["activation"], peepholes=first["peepholes"],
                      clip=first["clip"], input_forget=first["input_forget"],
                      reverse=first["direction"] == "reverse")
    state = {}
    for k, spec in enumerate(specs):
        if spec["W"].shape[1:] != (4 * H, layer.input_size if k == 0 else D * H):
            raise ValueError(f"LSTM node {k}: input W has shape {spec['W'].shape}, expected "
                             f"({D}, {4 * H}, {layer.input_size if k == 0 else D * H})")
        for d in range(D):
            sfx = suffix(k, d)
            state["weight_ih" + sfx] = _blocks(spec["W"][d], _FROM_ONNX, H)
            state["weight_hh" + sfx] = _blocks(spec["R"][d], _FROM_ONNX, H)
            state["bias_ih" + sfx] = _blocks(spec["B"][d, :4 * H], _FROM_ONNX, H)
            state["bias_hh" + sfx] = _blocks(spec["B"][d, 4 * H:], _FROM_ONNX, H)
            if first["peepholes"]:
                state["peephole" + sfx] = spec["P"][d]
    layer.load_state_dict(state)
    lengths = _graph_lengths(specs, nodes, return_lengths)
    extra = (lengths,) if return_lengths else ()
    if not return_state:
        return (layer,) + extra if extra else layer
    h0 = c0 = None
    if any(s["initial_h"] is not None or s["initial_c"] is not None for s in specs):
        def stack(key):
            parts = []
            for s in specs:
                v = s[key]
                if v is None:
                    B = next(t[key].shape for t in specs if t[key] is not None)
                    v = np.zeros(B, dtype)
                parts.append(v.swapaxes(0, 1) if first["layout"] == 1 else v)
            return np.concatenate(parts, axis=0).astype(dtype)
        h0, c0 = stack("initial_h"), stack("initial_c")
    return (layer, (h0, c0)) + extra


def _graph_lengths(specs, nodes, wanted):
    """The one ``sequence_lens`` of the LSTM nodes (every node the same input, or none): the
    constant values, the name of the run-time input, or None."""
    names = {s["lengths_name"] for s in specs}
    consts = [s["lengths"] for s in specs if s["lengths"] is not None]
    if len(names) > 1 and not (consts and len(consts) == len(specs)
                               and all(np.array_equal(c, consts[0]) for c in consts)):
        raise ValueError(f"LSTM nodes {[n.name for n in nodes]}: inputs sequence_lens "
                         f"{sorted(str(n) for n in names)} differ; one LSTMLayer runs every "
                         "layer on the same lengths")
    name = names.pop() if len(names) == 1 else specs[0]["lengths_name"]
    if name is None:
        return None
    found = consts[0].astype(np.int64) if consts else name
    if not wanted:
        what = f"={found.tolist()}" if consts else f" ({name!r}, given at run time)"
        raise ValueError(f"model: the graph has sequence_lens{what}; pass "
                         "return_lengths=True to get them and call forward(x, lengths=...)")
    return found


def _node_spec(onnx, node, inits):
    """The attributes and weights of one LSTM node, checked."""
    from onnx import helper

    where = f"LSTM node {node.name!r}" if node.name else "LSTM node"
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    known = {"hidden_size", "direction", "layout", "activations", "activation_alpha",
             "activation_beta", "clip", "input_forget"}
    for name, value in attrs.items():
        if name not in known:
            raise ValueError(f"{where}: attribute {name}={value!r} is not supported")
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ValueError(f"{where}: attribute direction={direction!r} is not supported")
    D = 2 if direction == "bidirectional" else 1
    layout = int(attrs.get("layout", 0))
    if layout not in (0, 1):
        raise ValueError(f"{where}: attribute layout={layout} is not supported")
    acts = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
    alphas = list(attrs.get("activation_alpha", []))
    betas = list(attrs.get("activation_beta", []))
    activation = "tanh"
    if acts:
        if len(acts) != 3 * D:
            raise ValueError(f"{where}: attribute activations={acts} should name 3 functions "
                             f"per direction ({3 * D})")
        cell = {"tanh": "tanh", "relu": "relu", "affine": "linear"}
        chosen = set()
        for d in range(D):
            f, g, h = (a.lower() for a in acts[3 * d:3 * d + 3])
            if f != "sigmoid":
                raise ValueError(f"{where}: attribute activations={acts}: the gate activation "
                                 f"{acts[3 * d]!r} is not supported (only Sigmoid)")
            if g != h or g not in cell:
                raise ValueError(f"{where}: attribute activations={acts}: the cell activations "
                                 f"must be the same Tanh, Relu or Affine, got {acts[3 * d + 1]!r}"
                                 f" and {acts[3 * d + 2]!r}")
            chosen.add(cell[g])
        if len(chosen) > 1:
            raise ValueError(f"{where}: attribute activations={acts}: both directions must use "
                             "the same functions")
        activation = chosen.pop()
        n_affine = sum(a.lower() == "affine" for a in acts)
        if activation == "linear":
            if alphas[:n_affine] != [1.0] * n_affine or betas[:n_affine] != [0.0] * n_affine:
                raise ValueError(f"{where}: attributes activation_alpha={alphas}, "
                                 f"activation_beta={betas}: only Affine with alpha 1 and beta 0 "
                                 "(the identity) is supported")
        elif alphas or betas:
            raise ValueError(f"{where}: attributes activation_alpha={alphas}, activation_beta="
                             f"{betas} are not used by {acts}")
    clip = attrs.get("clip")
    if clip is not None and not clip > 0:
        raise ValueError(f"{where}: attribute clip={clip} must be > 0")
    input_forget = int(attrs.get("input_forget", 0))
    if input_forget not in (0, 1):
        raise ValueError(f"{where}: attribute input_forget={input_forget} is not supported")

    ins = list(node.input) + [""] * (8 - len(node.input))
    names = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]

    def init(k, required=False):
        name = ins[k]
        if not name:
            if required:
                raise ValueError(f"{where}: input {names[k]} is missing")
            return None
        if name not in inits:
            if k in (5, 6):  # computed at run time: the caller passes states to forward()
                return None
            if k == 4:  # computed at run time: the caller passes lengths to forward()
                return None
            raise ValueError(f"{where}: input {names[k]} ({name!r}) must be an initializer")
        return inits[name]

    W, R = init(1, True), init(2, True)
    lens = init(4)
    if lens is not None and (lens.ndim != 1 or lens.dtype.kind not in "iu"):
        raise ValueError(f"{where}: input sequence_lens must be a vector of integers, got "
                         f"shape {lens.shape} and dtype {lens.dtype}")
    H = int(attrs.get("hidden_size", R.shape[-1]))
    if W.ndim != 3 or W.shape[0] != D or W.shape[1] != 4 * H or R.shape != (D, 4 * H, H):
        raise ValueError(f"{where}: W {W.shape} / R {R.shape} do not fit direction={direction}"
                         f", hidden_size={H}")
    B = init(3)
    B = np.zeros((D, 8 * H), W.dtype) if B is None else B
    if B.shape != (D, 8 * H):
        raise ValueError(f"{where}: input B has shape {B.shape}, expected ({D}, {8 * H})")
    P = init(7)
    if P is not None and P.shape != (D, 3 * H):
        raise ValueError(f"{where}: input P has shape {P.shape}, expected ({D}, {3 * H})")
    return {"direction": direction, "layout": layout, "hidden_size": H,
            "activation": activation, "clip": float(clip) if clip is not None else None,
            "input_forget": bool(input_forget), "peepholes": P is not None, "W": W, "R": R,
            "B": B, "P": P, "initial_h": init(5), "initial_c": init(6), "lengths": lens,
            "lengths_name": ins[4] or None}
