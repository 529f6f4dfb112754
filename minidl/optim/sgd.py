"""SGD: param ← param − learnRate · grad."""

import numpy

from minidl.backend import Elementwise, scratch
from minidl.optim.optimizer import Optimizer


def _sgdNumpy(grad, learnRate, param):
    step = scratch(grad.shape, numpy.promote_types(grad.dtype, numpy.float32))  # as C promotes half
    numpy.multiply(grad, learnRate, out=step)
    param -= step


sgdKer = Elementwise("minidl_sgd", "T grad, float32 learnRate", "T param", "param -= learnRate * grad", _sgdNumpy)


class SGD(Optimizer):
    """Plain stochastic gradient descent."""

    kernel = sgdKer

    def __init__(self, learnRate=1e-3, nodeinfo=None):
        super().__init__(nodeinfo)
        self.learnRate = learnRate

    def kernelArgs(self, param, grad, state, learnRate):
        return grad, learnRate, param
