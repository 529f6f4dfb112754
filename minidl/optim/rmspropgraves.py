"""RMSProp as Graves uses it ("Generating sequences with recurrent neural networks", 2013, eqs. 38-41):
the running mean of the gradient is subtracted from the running mean square (a running variance), and the step
carries momentum.

    mg    ← alpha · mg + (1 − alpha) · grad
    ms    ← alpha · ms + (1 − alpha) · grad²
    delta ← momRate · delta + learnRate · grad / sqrt(ms − mg² + epsilon)
    param ← param − delta

epsilon is inside the square root, as in the paper (it also keeps the root real where rounding makes ms − mg²
slightly negative).
"""

import numpy

from minidl.backend import scratch
from minidl.optim.optimizer import Hyper, Optimizer, stateArray
from minidl.optim.rule import UpdateRule


def _rmspropGravesNumpy(grad, learnRate, alpha, momRate, epsilon, param, mg, ms, delta):
    step = scratch(grad.shape, numpy.promote_types(grad.dtype, numpy.float32))  # as C promotes half
    numpy.multiply(grad, 1 - alpha, out=step)
    mg *= alpha
    mg += step
    step *= grad
    ms *= alpha
    ms += step
    numpy.multiply(mg, mg, out=step)
    numpy.subtract(ms, step, out=step)
    step += epsilon
    numpy.sqrt(step, out=step)
    numpy.divide(grad, step, out=step)
    step *= learnRate
    delta *= momRate
    delta += step
    param -= delta


rmspropGravesRule = UpdateRule(
    "minidl_rmsprop_graves",
    hypers=("learnRate", "alpha", "momRate", "epsilon"),
    states=("mg", "ms", "delta"),
    operation="mg = alpha * mg + (1 - alpha) * grad;"
              "ms = alpha * ms + (1 - alpha) * grad * grad;"
              "delta = momRate * delta + learnRate * grad / sqrt(ms - mg * mg + epsilon);"
              "param -= delta",
    reference=_rmspropGravesNumpy,
)


class RMSPropGraves(Optimizer):
    """RMSProp normalised by a running standard deviation of the gradient, with momentum."""

    alpha = Hyper(high=1.0, highOpen=True)
    momRate = Hyper(high=1.0, highOpen=True)
    epsilon = Hyper(lowOpen=True)
    hyperNames = ("learnRate", "alpha", "momRate", "epsilon")
    nonNegativeStates = ("ms",)
    rule = rmspropGravesRule

    def __init__(self, learnRate=1e-4, alpha=0.95, momRate=0.9, epsilon=1e-4, nodeinfo=None):
        super().__init__(nodeinfo)
        self.learnRate, self.alpha, self.momRate, self.epsilon = learnRate, alpha, momRate, epsilon

    def setupState(self, param):
        return {"mg": stateArray(param), "ms": stateArray(param), "delta": stateArray(param)}

    def hyperValues(self, learnRate):
        return learnRate, self.alpha, self.momRate, self.epsilon
