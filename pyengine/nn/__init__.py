"""Layers (pyengine.nn); the layer API grows in its own issue. F is pyengine.nn.functional."""

from .. import functional  # noqa: F401
from . import init  # noqa: F401
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential  # noqa: F401
from . import utils  # noqa: F401
from .linear import Dropout, Embedding, Flatten, Identity, Linear, Unflatten  # noqa: F401
from .conv import Conv1d, Conv2d, ConvTranspose2d  # noqa: F401
from .loss import (  # noqa: F401
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss,
)

__all__ = ["functional", "init"]
__all__ += ["Module", "ModuleDict", "ModuleList", "Parameter", "Sequential"]
__all__ += ["utils", "Dropout", "Embedding", "Flatten", "Identity", "Linear", "Unflatten"]
__all__ += ["Conv1d", "Conv2d", "ConvTranspose2d"]
__all__ += ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "L1Loss", "MSELoss", "NLLLoss"]
