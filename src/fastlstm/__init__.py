"""fastlstm: LSTMs that are fast on the CPU.

* :class:`fastlstm.LSTM`: the drop-in replacement for the NumPy LSTM of the notebooks, on C
  kernels (same constructor, attributes, random draws and printed lines).
* :func:`fastlstm.lstm_step`: one cell step with notebook 003's signature.
* :mod:`fastlstm.reference`: the notebooks' NumPy code, the oracle of the tests.
"""

from importlib.metadata import PackageNotFoundError, version as _version

from . import reference
from ._core import NonFiniteLossError, blas_enabled, set_blas_enabled
from .layer import LSTMLayer
from .lstm import GATE_ORDER, LSTM, lstm_step

try:
    __version__ = _version("fastlstm")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = ["LSTM", "LSTMLayer", "lstm_step", "reference", "GATE_ORDER", "NonFiniteLossError",
           "set_blas_enabled", "blas_enabled", "__version__"]
