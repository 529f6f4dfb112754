"""Weight decay hooks: a penalty's gradient added to each Variable's gradient, scaled by its ``wc``.

    WeightDecay (L2, penalty rate · wc · ‖param‖² / 2):  grad ← grad + rate · wc · param
    L1Decay     (L1, penalty rate · wc · ‖param‖₁):      grad ← grad + rate · wc · sign(param)

In global state a launch covers each stretch of consecutive Variables with one ``wc``; ``wc = 0`` is skipped.
"""

import numpy

from minidl.backend import Elementwise, scratch
from minidl.optim.hooks.hook import Hook
from minidl.optim.optimizer import checkHyper


def _l2DecayNumpy(param, rate, grad):
    step = scratch(grad.shape, numpy.promote_types(grad.dtype, numpy.float32))  # as C promotes half
    numpy.multiply(param, rate, out=step)
    grad += step


l2DecayKer = Elementwise("minidl_l2_decay", "T param, float32 rate", "T grad", "grad += rate * param", _l2DecayNumpy)


def _l1DecayNumpy(param, rate, grad):
    step = scratch(grad.shape, numpy.promote_types(grad.dtype, numpy.float32))
    numpy.sign(param, out=step)
    step *= rate
    grad += step


l1DecayKer = Elementwise(
    "minidl_l1_decay", "T param, float32 rate", "T grad", "grad += rate * ((param > 0) - (param < 0))", _l1DecayNumpy
)


class WeightDecay(Hook):
    """L2 weight decay (Krogh & Hertz, "A simple weight decay can improve generalization", NIPS 1991)."""

    kernel = l2DecayKer

    def __init__(self, rate):
        self.rate = checkHyper("rate", rate)

    def __call__(self, groups):
        for group in groups:
            for wc, start, stop in group.runs("wc"):
                if wc != 0:
                    param, grad, _ = group.arrays(start, stop)
                    self.kernel(param, self.rate * wc, grad)


class L1Decay(WeightDecay):
    """L1 weight decay (the lasso's penalty, Tibshirani 1996): pulls each parameter towards 0 at a constant rate."""

    kernel = l1DecayKer
