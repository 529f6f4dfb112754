"""BCE on logits: error = mean(max(x, 0) - x t + log(1 + exp(-|x|))) (= mean binary cross-entropy of
sigmoid(x) against t, computed stably), grad = (sigmoid(x) - t) / x.size; targets t lie in [0, 1] (checked on the
device on a GPU: ``Cost``)."""

import numpy

from minidl.backend import xp
from minidl.cost.cost import Cost, meanGradKernel
from minidl.errors import CostError


def _bceGradNumpy(pred, target, scale, grad):
    with numpy.errstate(over="ignore"):
        numpy.negative(pred, out=grad)
        numpy.exp(grad, out=grad)
    grad += 1
    numpy.reciprocal(grad, out=grad)
    grad -= target
    grad *= scale


bceGradKer = meanGradKernel(
    "minidl_bce_grad", "grad = ((T)1 / ((T)1 + exp(-pred)) - target) * scale", _bceGradNumpy
)


class BCE(Cost):
    """Binary cross-entropy with logits: predictions are raw scores, targets probabilities in [0, 1]."""

    gradKernel = bceGradKer

    def checkTarget(self, pred, target):
        super().checkTarget(pred, target)
        low, high = target.min(), target.max()
        inside = (low >= 0) & (high <= 1)  # false for NaN, which fails every comparison
        self.noteValues("targets", ~inside, (low, high), self._targetError)

    def _targetError(self, low, high):
        raise CostError(f"{self!r}: targets must lie in [0, 1], got values in [{low}, {high}]")

    def calcError(self, pred, target):
        losses = xp.maximum(pred, 0) - pred * target + xp.log1p(xp.exp(-xp.abs(pred)))
        return losses.mean()
