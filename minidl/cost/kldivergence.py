"""KLDivergence of the softmax of raw scores from target distributions t (rows of non-negative values
summing to 1): with p = softmax(scores) per row,

    error = mean over rows of Σ_c t_c (log t_c - log p_c)   (0 log 0 = 0),   grad = (p - t) / batch.
"""

import numpy

from minidl.backend import Elementwise, xp
from minidl.cost.cost import Cost
from minidl.cost.crossentropy import logSoftmaxParts
from minidl.errors import CostError

SUM_TOLERANCE = 1e-3


def _klGradNumpy(shifted, logsum, target, classes, scale, grad):
    numpy.subtract(shifted, logsum[:, None], out=grad)
    numpy.exp(grad, out=grad)
    grad -= target
    grad *= scale


klGradKer = Elementwise(
    "minidl_kl_divergence_grad",
    "T shifted, raw T logsum, T target, int32 classes, T scale",
    "T grad",
    "grad = (exp(shifted - logsum[i / classes]) - target) * scale",
    _klGradNumpy,
)


class KLDivergence(Cost):
    """KL(t || softmax(scores)): scores and target distributions of shape (batch, classes)."""

    def checkTarget(self, pred, target):
        super().checkTarget(pred, target)
        if pred.ndim != 2:
            raise CostError(f"{self!r}: scores must have shape (batch, classes), got {pred.shape}")
        sums, low = target.sum(axis=1), target.min()
        good = (low >= 0) & (xp.abs(sums - 1).max() <= SUM_TOLERANCE)  # false for NaN, which fails every comparison
        bad = ~good
        self.noteValues("targets", bad, (low, target.max(), sums.min(), sums.max()), self._targetError)

    def _targetError(self, low, high, lowSum, highSum):
        raise CostError(f"{self!r}: each target row must be non-negative and sum to 1, got values in [{low}, {high}] "
                        f"and row sums in [{lowSum}, {highSum}]")

    def calcError(self, pred, target):
        return self._error(*logSoftmaxParts(pred), target)

    def calcErrorAndGrad(self, pred, target):
        shifted, logsum = logSoftmaxParts(pred)
        grad = klGradKer(shifted, logsum, target, pred.shape[1], 1.0 / pred.shape[0],
                                     xp.empty_like(pred))
        return self._error(shifted, logsum, target), grad

    @staticmethod
    def _error(shifted, logsum, target):
        logTarget = xp.log(xp.where(target > 0, target, 1))
        return (target * (logTarget - shifted + logsum[:, None])).sum(axis=1).mean()  # mean: no float16 overflow
