"""checkGradients and checkCostGradient fail a wrong backward, and refuse precisions a numerical step is lost in."""

import numpy
import pytest

from minidl import TestingError
from minidl.backend import toDevice
from minidl.cost import MSE
from minidl.nn import Linear
from minidl.testing import checkCostGradient, checkGradients

rng = numpy.random.default_rng(3)


class OverwritingLinear(Linear):
    """A backward that sets the parameters' gradients instead of adding to them."""

    def backward(self, grad, updGrad=True):
        for var in self.vars.values():
            var.grad[...] = 0
        return super().backward(grad, updGrad)


class HalvedInputGradient(Linear):
    def backward(self, grad, updGrad=True):
        return super().backward(grad, updGrad) / 2


def test_a_right_module_passes():
    checkGradients(Linear(3, 2, dtype=numpy.float64), toDevice(rng.standard_normal((4, 3))))


@pytest.mark.parametrize("module, what", [(OverwritingLinear, "gradient of parameter"),
                                          (HalvedInputGradient, "gradient of input 0")])
def test_a_wrong_backward_fails(module, what):
    with pytest.raises(AssertionError, match=what):
        checkGradients(module(3, 2, dtype=numpy.float64), toDevice(rng.standard_normal((4, 3))))


def test_float32_is_refused_with_a_reason():
    with pytest.raises(TestingError, match="input 0 is float32: numerical gradients need float64"):
        checkGradients(Linear(3, 2, dtype=numpy.float64), toDevice(rng.standard_normal((4, 3)).astype(numpy.float32)))
    with pytest.raises(TestingError, match="parameter W is float32"):
        checkGradients(Linear(3, 2), toDevice(rng.standard_normal((4, 3))))
    with pytest.raises(TestingError, match="pred is float32"):
        zeros = toDevice(numpy.zeros((2, 2), numpy.float32))
        checkCostGradient(MSE(), zeros, zeros)


def test_a_wrong_cost_gradient_fails():
    class DoubledMSE(MSE):
        def __call__(self, pred, target):
            error, grad = super().__call__(pred, target)
            return error, grad * 2

    pred, target = toDevice(rng.standard_normal((3, 2))), toDevice(rng.standard_normal((3, 2)))
    checkCostGradient(MSE(), pred, target)
    with pytest.raises(AssertionError, match="gradient of"):
        checkCostGradient(DoubledMSE(), pred, target)
