"""fastlstm: LSTMs that are fast on the CPU.

* :class:`fastlstm.LSTM`: the drop-in replacement for the NumPy LSTM of the notebooks, on C
  kernels (same constructor, attributes, random draws and printed lines).
* :func:`fastlstm.lstm_step`: one cell step with notebook 003's signature.
* :class:`fastlstm.LSTMLayer`: the batched, multi-layer, bidirectional layer with
  ``torch.nn.LSTM``'s semantics; ``layer.stream()`` (:class:`fastlstm.LSTMStream`) feeds it
  one step at a time.
* :class:`fastlstm.LSTMRegressor`: a scikit-learn regressor on it (needs scikit-learn).
* :mod:`fastlstm.training`, :mod:`fastlstm.data`: optimizers, loss, head; windows and forecasts.
* :func:`fastlstm.trace`: per-step gates and states of a forward pass, as arrays, tables, plots.
* :func:`fastlstm.save` / :func:`fastlstm.load`: one ``.npz`` file, no pickle;
  :mod:`fastlstm.interop`: PyTorch, Keras and ONNX converters.
* :mod:`fastlstm.reference`: the notebooks' NumPy code, the oracle of the tests.
"""

from . import reference
from ._core import NonFiniteLossError, get_num_threads, set_num_threads
from ._config import config, set_core_check, show_config
from .layer import LSTMLayer, LSTMStream
from .lstm import GATE_ORDER, LSTM, lstm_step
from .tracing import Trace, trace

from ._version import __version__

__all__ = ["LSTM", "LSTMLayer", "LSTMStream", "LSTMRegressor", "lstm_step", "trace", "Trace", "reference",
           "GATE_ORDER",
           "NonFiniteLossError", "set_num_threads", "get_num_threads", "set_core_check", "config",
           "show_config",
           "save", "load", "to_onnx",
           "from_onnx",
           "__version__"]


def __getattr__(name):
    # LSTMRegressor needs scikit-learn, an optional dependency: imported on first use only;
    # the converters on first use too (fastlstm.interop)
    if name == "LSTMRegressor":
        from .regressor import LSTMRegressor
        return LSTMRegressor
    if name in ("save", "load", "to_onnx", "from_onnx"):
        from . import interop
        return getattr(interop, name)
    raise AttributeError(f"module 'fastlstm' has no attribute {name!r}")


def __dir__():
    # the lazy names (LSTMRegressor, save, load, to_onnx, from_onnx) too, for dir() and help()
    return sorted(set(globals()) | set(__all__))
