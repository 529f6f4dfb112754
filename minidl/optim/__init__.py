"""Optimizers: each an update rule run as one in-place Elementwise kernel per step."""

from minidl.errors import OptimizerError
from minidl.optim.adagrad import AdaGrad
from minidl.optim.optimizer import Optimizer
from minidl.optim.sgd import SGD

__all__ = ["AdaGrad", "Optimizer", "OptimizerError", "SGD"]
