"""Optimizers: each an update rule run as one in-place Elementwise kernel per step, and hooks on the gradients."""

from minidl.errors import OptimizerError
from minidl.optim.adagrad import AdaGrad
from minidl.optim.hooks import GradientClip, GradientHardClip, Hook, L1Decay, WeightDecay
from minidl.optim.optimizer import Optimizer
from minidl.optim.sgd import SGD

__all__ = [
    "AdaGrad", "GradientClip", "GradientHardClip", "Hook", "L1Decay", "Optimizer", "OptimizerError", "SGD",
    "WeightDecay",
]
