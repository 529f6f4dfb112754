"""Weight decay hooks: a penalty's gradient added to each Variable's gradient, scaled by its ``wc``.

    WeightDecay (L2, penalty rate · wc · ‖param‖² / 2):  grad ← grad + rate · wc · param
    L1Decay     (L1, penalty rate · wc · ‖param‖₁):      grad ← grad + rate · wc · sign(param)

In global state a launch covers each stretch of consecutive Variables with one ``wc``; ``wc = 0`` is skipped.
The penalty reads the parameters' true values (the float32 masters of float16 parameters, where there are) and is
added in the gradient's scale (divided by the group's ``gradScale``, 1/scale under loss scaling), in the compute
type S of ``gradScale``. sign(NaN) is NaN on every path.
"""

import numpy

from minidl.backend import Elementwise, scratch
from minidl.errors import OptimizerError
from minidl.optim.hooks.hook import Hook
from minidl.validation import checkNumber


def _l2DecayNumpy(param, gradScale, rate, grad):
    step = scratch(grad.shape, gradScale.dtype, "decayStep")
    numpy.multiply(param, rate, out=step, dtype=step.dtype)
    step /= gradScale[0]
    grad += step


l2DecayKer = Elementwise(
    "minidl_l2_decay", "P param, raw S gradScale, S rate", "T grad", "grad += rate * (S)param / gradScale[0]",
    _l2DecayNumpy,
)


def _l1DecayNumpy(param, gradScale, rate, grad):
    step = scratch(grad.shape, gradScale.dtype, "decayStep")
    numpy.sign(param, out=step, dtype=step.dtype)
    step *= rate
    step /= gradScale[0]
    grad += step


l1DecayKer = Elementwise(
    "minidl_l1_decay", "P param, raw S gradScale, S rate", "T grad",
    "const S value = (S)param; grad += rate * (value == value ? (S)((value > 0) - (value < 0)) : value) / gradScale[0]",
    _l1DecayNumpy,
)


class WeightDecay(Hook):
    """L2 weight decay (Krogh & Hertz, "A simple weight decay can improve generalization", NIPS 1991)."""

    kernel = l2DecayKer

    def __init__(self, rate):
        self.rate = checkNumber(rate, "rate", OptimizerError, low=0.0)

    def __call__(self, groups):
        for group in groups:
            for wc, start, stop in group.runs("wc"):
                if wc != 0:
                    _, grad, _, _ = group.arrays(start, stop)
                    self.kernel(group.values(start, stop), group.gradScale, self.rate * wc, grad)


class L1Decay(WeightDecay):
    """L1 weight decay (the lasso's penalty, Tibshirani 1996): pulls each parameter towards 0 at a constant rate."""

    kernel = l1DecayKer
