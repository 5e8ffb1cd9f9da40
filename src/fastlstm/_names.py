"""Names and constants shared by the production code and the NumPy oracle (and nothing else
is shared between them): the gate order and PyTorch's parameter names."""

from __future__ import annotations

__all__ = ["GATE_ORDER", "suffix", "direction_suffixes", "param_names"]

#: Gate order of every packed buffer in fastlstm (the C enum fl_gate in csrc/fastlstm.h), and
#: of PyTorch's weights.
GATE_ORDER = ("i", "f", "g", "o")


def direction_suffixes(bidirectional):
    """``("",)`` or ``("", "_reverse")``: the name suffixes of a layer's directions."""
    return ("", "_reverse") if bidirectional else ("",)


def suffix(layer, direction):
    """``_l{layer}`` or ``_l{layer}_reverse``: PyTorch's suffix of one layer and direction."""
    return f"_l{layer}" + ("_reverse" if direction else "")


def param_names(num_layers, bidirectional, peepholes=False):
    """The parameter names in the order of torch's ``_flat_weights_names``: for each layer,
    for each direction, ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (plus ``_reverse`` for the reverse direction), and with ``peepholes``
    ``peephole_l{k}`` (3H: ONNX's order i, o, f) after them."""
    kinds = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") + (
        ("peephole",) if peepholes else ())
    names = []
    for layer in range(num_layers):
        for sfx in direction_suffixes(bidirectional):
            names += [f"{kind}_l{layer}{sfx}" for kind in kinds]
    return names
