"""Converters: to and from PyTorch and Keras (frameworks.py), ONNX (onnx.py) and fastlstm's own
``.npz`` format (npz.py). They use the models' public surface (parameters, state dicts,
constructor arguments, a fitted regressor's public record); nothing below them imports them.
torch, keras, onnx and onnxruntime are imported only when a converter that needs them runs."""

from .frameworks import (from_keras, from_torch, mask_lengths, regressor_to_keras,
                         to_keras_weights, to_torch)
from .npz import load, save
from .onnx import from_onnx, to_onnx

__all__ = ["from_torch", "to_torch", "from_keras", "to_keras_weights", "regressor_to_keras",
           "mask_lengths",
           "to_onnx", "from_onnx", "save", "load"]
