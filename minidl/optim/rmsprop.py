"""RMSProp (Tieleman & Hinton, "Lecture 6.5 - rmsprop", COURSERA: Neural Networks for Machine Learning, 2012):

    ms    ← factor · ms + (1 − factor) · grad²
    param ← param − learnRate · grad / (sqrt(ms) + epsilon)

epsilon is added outside the square root, as in the reference framework's kernel.
"""


import numpy

from minidl.backend import scratch
from minidl.optim.optimizer import Optimizer
from minidl.optim.rootstep import rootStep
from minidl.optim.rule import Hyper, State, UpdateRule


def _rmspropNumpy(grad, learnRate, factor, epsilon, param, ms):
    step = scratch(grad.shape, numpy.promote_types(grad.dtype, numpy.float32), "step")  # as C promotes half
    numpy.multiply(grad, 1 - factor, out=step)  # (1 − factor) · grad · grad, in the CUDA text's order
    step *= grad
    ms *= factor
    ms += step
    rootStep(grad, learnRate, epsilon, param, ms, step)


rmspropRule = UpdateRule(
    "minidl_rmsprop",
    hypers={"learnRate": Hyper(), "factor": Hyper(high=1.0, highOpen=True), "epsilon": Hyper(lowOpen=True)},
    states={"ms": State(nonNegative=True)},
    operation="ms = factor * ms + (1 - factor) * grad * grad; param -= learnRate * grad / (sqrt(ms) + epsilon)",
    reference=_rmspropNumpy,
)


class RMSProp(Optimizer):
    """AdaGrad with a forgetting sum: the step is divided by a running RMS of recent gradients."""

    rule = rmspropRule

    def __init__(self, learnRate=1e-3, factor=0.9, epsilon=1e-5, nodeinfo=None):
        super().__init__(nodeinfo, learnRate=learnRate, factor=factor, epsilon=epsilon)
