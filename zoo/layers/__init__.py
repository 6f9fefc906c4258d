"""Building blocks shared by the zoo's architectures, one module per job.

Activations flow time-first (``[T, B, ...]``); stateless layers are applied time-folded
(:func:`fold`), neurons time-first.
"""

from .act import ANN_ACTIVATIONS, create_act
from .conv import ConvNormAct
from .eca import ECA, eca_kernel_size
from .encoding import encode_input
from .norm import TdBatchNorm2d
from .qcfs import QCFS
from .readout import Readout
from .residual import BasicBlock, conv3x3
from .time import fold

__all__ = [
    "ANN_ACTIVATIONS", "BasicBlock", "ConvNormAct", "ECA", "QCFS", "Readout", "TdBatchNorm2d",
    "conv3x3", "create_act", "eca_kernel_size", "encode_input", "fold",
]
