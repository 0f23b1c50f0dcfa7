"""Layers (pyengine.nn); the layer API grows in its own issue. F is pyengine.nn.functional."""

from .. import functional  # noqa: F401
from . import (
    init,  # noqa: F401
    utils,  # noqa: F401
)
from .activation import (  # noqa: F401
    ELU,
    GELU,
    SELU,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .attention import (  # noqa: F401
    MultiheadAttention,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from .conv import Conv1d, Conv2d, ConvTranspose2d  # noqa: F401
from .linear import Dropout, Embedding, Flatten, Identity, Linear, Unflatten  # noqa: F401
from .loss import (  # noqa: F401
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential  # noqa: F401
from .normalization import (  # noqa: F401
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LayerNorm,
)
from .pooling import (  # noqa: F401
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    MaxPool2d,
    MaxUnpool2d,
    Upsample,
)
from .rnn import GRU, LSTM, GRUCell, LSTMCell  # noqa: F401

__all__ = ["functional", "init"]
__all__ += ["Module", "ModuleDict", "ModuleList", "Parameter", "Sequential"]
__all__ += ["utils", "Dropout", "Embedding", "Flatten", "Identity", "Linear", "Unflatten"]
__all__ += ["Conv1d", "Conv2d", "ConvTranspose2d"]
__all__ += [
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool2d",
    "MaxPool2d",
    "MaxUnpool2d",
    "Upsample",
]
__all__ += ["GRU", "LSTM", "GRUCell", "LSTMCell"]
__all__ += ["MultiheadAttention", "TransformerEncoder", "TransformerEncoderLayer"]
__all__ += ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "L1Loss", "MSELoss", "NLLLoss"]
__all__ += [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
]
__all__ += [
    "ELU",
    "GELU",
    "SELU",
    "LeakyReLU",
    "LogSoftmax",
    "ReLU",
    "Sigmoid",
    "SiLU",
    "Softmax",
    "Softplus",
    "Tanh",
]
