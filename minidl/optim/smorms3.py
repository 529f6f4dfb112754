"""SMORMS3 (Simon Funk, "RMSprop loses to SMORMS3 - Beware the Epsilon!", 2015,
sifter.org/~simon/journal/20150420.html): RMSProp whose averaging window ``mem`` adapts to how noisy each
parameter's gradient is, and whose step is capped by the squared signal-to-noise ratio x.

    r     ← 1 / (1 + mem)
    mg    ← (1 − r) · mg + r · grad
    ms    ← (1 − r) · ms + r · grad²
    x     ← mg² / (ms + epsilon)
    mem   ← 1 + mem · (1 − x)
    param ← param − grad · min(learnRate, x) / (sqrt(ms) + epsilon)

mem starts at 1, mg and ms at 0.
"""

import numpy

from minidl.backend import scratch
from minidl.optim.optimizer import Optimizer
from minidl.optim.rule import Hyper, State, UpdateRule


def _smorms3Numpy(grad, learnRate, epsilon, param, mem, mg, ms):
    wide = numpy.promote_types(grad.dtype, numpy.float32)  # as C promotes half
    r, work = scratch(grad.shape, wide, "r"), scratch(grad.shape, wide, "work")
    keep = scratch(grad.shape, wide, "keep")
    numpy.add(mem, 1, out=r)
    numpy.reciprocal(r, out=r)
    numpy.subtract(1, r, out=keep)  # (1 − r) · mg + r · grad and (1 − r) · ms + r · grad · grad, in the CUDA
    numpy.multiply(r, grad, out=work)  # text's order
    mg *= keep
    mg += work
    work *= grad
    ms *= keep
    ms += work
    x = r  # r is used up
    numpy.multiply(mg, mg, out=x)
    numpy.add(ms, epsilon, out=work)
    x /= work
    numpy.subtract(1, x, out=work)
    mem *= work
    mem += 1
    numpy.minimum(x, learnRate, out=x)
    x *= grad
    numpy.sqrt(ms, out=work)
    work += epsilon
    x /= work
    param -= x


smorms3Rule = UpdateRule(
    "minidl_smorms3",
    hypers={"learnRate": Hyper(), "epsilon": Hyper(lowOpen=True)},
    states={"mem": State(fill=1.0, nonNegative=True), "mg": State(), "ms": State(nonNegative=True)},
    operation="S r = 1 / (1 + mem);"
              "mg = (1 - r) * mg + r * grad;"
              "ms = (1 - r) * ms + r * grad * grad;"
              "S x = mg * mg / (ms + epsilon);"
              "mem = 1 + mem * (1 - x);"
              "param -= grad * (x > learnRate ? (S)learnRate : x) / (sqrt(ms) + epsilon)",
    reference=_smorms3Numpy,
)


class SMORMS3(Optimizer):
    """RMSProp with a per-parameter memory length and a step capped where the gradient is mostly noise."""

    rule = smorms3Rule

    def __init__(self, learnRate=1e-3, epsilon=1e-16, nodeinfo=None):
        super().__init__(nodeinfo, learnRate=learnRate, epsilon=epsilon)
