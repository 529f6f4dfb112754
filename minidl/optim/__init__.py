"""Optimizers: each an update rule run as one in-place Elementwise kernel per step. Hooks that rewrite the
gradients before a step (decays, clipping) are in ``minidl.optim.hooks``."""

from minidl.errors import OptimizerError
from minidl.optim.adadelta import AdaDelta
from minidl.optim.adagrad import AdaGrad
from minidl.optim.adam import Adam, AdamW
from minidl.optim.lossscaler import LossScaler
from minidl.optim.momentum import MomentumSGD, NesterovSGD
from minidl.optim.optimizer import Optimizer
from minidl.optim.rmsprop import RMSProp
from minidl.optim.rmspropgraves import RMSPropGraves
from minidl.optim.sgd import SGD
from minidl.optim.smorms3 import SMORMS3

__all__ = [
    "AdaDelta", "AdaGrad", "Adam", "AdamW", "LossScaler", "MomentumSGD", "NesterovSGD", "Optimizer", "OptimizerError",
    "RMSProp", "RMSPropGraves", "SGD", "SMORMS3",
]
