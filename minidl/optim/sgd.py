"""SGD: param ← param − learnRate · grad."""

import numpy

from minidl.backend import scratch
from minidl.optim.optimizer import Optimizer
from minidl.optim.rule import Hyper, UpdateRule


def _sgdNumpy(grad, learnRate, param):
    step = scratch(grad.shape, numpy.promote_types(grad.dtype, numpy.float32), "step")  # as C promotes half
    numpy.multiply(grad, learnRate, out=step)
    param -= step


sgdRule = UpdateRule("minidl_sgd", {"learnRate": Hyper()}, {}, "param -= learnRate * grad", _sgdNumpy)


class SGD(Optimizer):
    """Plain stochastic gradient descent."""

    rule = sgdRule

    def __init__(self, learnRate=1e-3, nodeinfo=None):
        super().__init__(nodeinfo, learnRate=learnRate)
