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
from minidl.optim.optimizer import Optimizer
from minidl.optim.rule import Hyper, State, UpdateRule


def _rmspropGravesNumpy(grad, learnRate, alpha, momRate, epsilon, param, mg, ms, delta):
    step = scratch(grad.shape, numpy.promote_types(grad.dtype, numpy.float32), "step")  # as C promotes half
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
    scaled = scratch(grad.shape, step.dtype, "scaledGrad")
    numpy.multiply(grad, learnRate, out=scaled)  # (learnRate · grad) / root, in the CUDA text's order
    numpy.divide(scaled, step, out=step)
    delta *= momRate
    delta += step
    param -= delta


rmspropGravesRule = UpdateRule(
    "minidl_rmsprop_graves",
    hypers={"learnRate": Hyper(), "alpha": Hyper(high=1.0, highOpen=True), "momRate": Hyper(high=1.0, highOpen=True),
            "epsilon": Hyper(lowOpen=True)},
    states={"mg": State(), "ms": State(nonNegative=True), "delta": State()},
    operation="mg = alpha * mg + (1 - alpha) * grad;"
              "ms = alpha * ms + (1 - alpha) * grad * grad;"
              "delta = momRate * delta + learnRate * grad / sqrt(ms - mg * mg + epsilon);"
              "param -= delta",
    reference=_rmspropGravesNumpy,
)


class RMSPropGraves(Optimizer):
    """RMSProp normalised by a running standard deviation of the gradient, with momentum."""

    rule = rmspropGravesRule

    def __init__(self, learnRate=1e-4, alpha=0.95, momRate=0.9, epsilon=1e-4, nodeinfo=None):
        super().__init__(nodeinfo, learnRate=learnRate, alpha=alpha, momRate=momRate, epsilon=epsilon)
