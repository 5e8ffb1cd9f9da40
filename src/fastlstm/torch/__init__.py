"""fastlstm inside PyTorch: :class:`fastlstm.torch.LSTM`, a drop-in for ``torch.nn.LSTM`` on
fastlstm's CPU kernels (registered as ``torch.library`` operators, so autograd,
``torch.compile``, ``gradcheck`` and ``DistributedDataParallel`` treat it as any layer), and
:func:`fastlstm.torch.replace_lstm`, which swaps it into a model.

PyTorch is optional for fastlstm: ``import fastlstm`` never imports it; this module needs it.
"""

try:
    import torch  # noqa: F401
except ImportError:
    raise ImportError("fastlstm.torch needs PyTorch: pip install torch (a CPU build is "
                      "enough), or pip install 'fastlstm[torch]'") from None

from . import _ops  # noqa: F401  (registers the operators)
from ._module import LSTM, replace_lstm

__all__ = ["LSTM", "replace_lstm"]
