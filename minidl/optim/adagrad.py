"""AdaGrad (Duchi, Hazan & Singer, 2011):

    h     ← h + grad²
    param ← param − learnRate · grad / (sqrt(h) + epsilon)

epsilon is added outside the square root, as in the reference framework's kernel (the seed page writes
it inside; outside keeps the step bounded by learnRate · grad / epsilon when h is tiny). learnRate and
epsilon reach the kernel in the compute type. h is float32 for float16 parameters (``stateArray``): in float16 a
gradient below about 2e-4 would square to 0 and the step become grad / epsilon.
"""

import numpy

from minidl.backend import scratch
from minidl.optim.optimizer import Optimizer
from minidl.optim.rule import Hyper, State, UpdateRule


def squares(grad):
    """grad², in a scratch buffer of the compute type (half squares in float32, as C promotes half)."""
    step = scratch(grad.shape, numpy.promote_types(grad.dtype, numpy.float32), "step")
    numpy.multiply(grad, grad, out=step, dtype=step.dtype)
    return step


def rootStep(grad, learnRate, epsilon, param, squared, step):
    """param ← param − learnRate · grad / (sqrt(squared) + epsilon), through the buffer ``step``."""
    numpy.sqrt(squared, out=step)
    step += epsilon
    numpy.divide(grad, step, out=step)
    step *= learnRate
    param -= step


def _adagradNumpy(grad, learnRate, epsilon, param, h):
    step = squares(grad)
    h += step
    rootStep(grad, learnRate, epsilon, param, h, step)


adagradRule = UpdateRule(
    "minidl_adagrad",
    hypers={"learnRate": Hyper(), "epsilon": Hyper(lowOpen=True)},
    states={"h": State(nonNegative=True)},
    operation="h += grad * grad; param -= learnRate * grad / (sqrt(h) + epsilon)",
    reference=_adagradNumpy,
)


class AdaGrad(Optimizer):
    """Adaptive gradient: each parameter's step shrinks with the root of its summed squared gradients."""

    rule = adagradRule

    def __init__(self, learnRate=1e-3, epsilon=1e-8, nodeinfo=None):
        super().__init__(nodeinfo, learnRate=learnRate, epsilon=epsilon)
