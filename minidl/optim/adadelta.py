"""AdaDelta (Zeiler, "ADADELTA: an adaptive learning rate method", 2012, Algorithm 1):

    msg   ← rho · msg + (1 − rho) · grad²
    dx    ← sqrt(msdx + epsilon) / sqrt(msg + epsilon) · grad
    msdx  ← rho · msdx + (1 − rho) · dx²
    param ← param − learnRate · dx

The paper has no learning rate: learnRate is 1.0 and stays out of the constructor, as in the reference
framework; it is there to scale the step per Variable (``var.learnRate``) or by a schedule. msdx accumulates
the unscaled dx.
"""

import numpy

from minidl.backend import scratch
from minidl.optim.optimizer import Optimizer
from minidl.optim.rule import Hyper, State, UpdateRule


def _adadeltaNumpy(grad, learnRate, rho, epsilon, param, msg, msdx):
    wide = numpy.promote_types(grad.dtype, numpy.float32)  # as C promotes half
    dx, work = scratch(grad.shape, wide, "dx"), scratch(grad.shape, wide, "work")
    numpy.multiply(grad, 1 - rho, out=work)  # (1 − rho) · grad · grad, in the CUDA text's order
    work *= grad
    msg *= rho
    msg += work
    numpy.add(msdx, epsilon, out=dx)
    numpy.add(msg, epsilon, out=work)
    dx /= work
    numpy.sqrt(dx, out=dx)
    dx *= grad
    numpy.multiply(dx, 1 - rho, out=work)
    work *= dx
    msdx *= rho
    msdx += work
    if learnRate != 1:  # the paper's rule has none: save the pass
        dx *= learnRate
    param -= dx


adadeltaRule = UpdateRule(
    "minidl_adadelta",
    hypers={"learnRate": Hyper(), "rho": Hyper(high=1.0, highOpen=True), "epsilon": Hyper(lowOpen=True)},
    states={"msg": State(nonNegative=True), "msdx": State(nonNegative=True)},
    operation="msg = rho * msg + (1 - rho) * grad * grad;"
              "S dx = sqrt((msdx + epsilon) / (msg + epsilon)) * grad;"
              "msdx = rho * msdx + (1 - rho) * dx * dx;"
              "param -= learnRate * dx",
    reference=_adadeltaNumpy,
)


class AdaDelta(Optimizer):
    """Steps whose size is the running RMS of past steps over the running RMS of gradients: no learning rate."""

    rule = adadeltaRule

    def __init__(self, rho=0.95, epsilon=1e-6, nodeinfo=None):
        super().__init__(nodeinfo, learnRate=1.0, rho=rho, epsilon=epsilon)
