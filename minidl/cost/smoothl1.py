"""SmoothL1 (Huber with threshold beta): with d = pred - target,

    error = mean(d² / (2 beta) where |d| < beta, else |d| - beta / 2),
    grad = clip(d / beta, -1, 1) / pred.size  (d / beta where |d| < beta, else sign(d)).
"""

import numpy

from minidl.backend import Elementwise, xp
from minidl.cost.cost import Cost
from minidl.errors import CostError
from minidl.validation import checkNumber


def _smoothL1GradNumpy(pred, target, beta, scale, grad):
    numpy.subtract(pred, target, out=grad)
    grad /= beta
    numpy.clip(grad, -1, 1, out=grad)
    grad *= scale


smoothL1GradKer = Elementwise(
    "minidl_smooth_l1_grad", "T pred, T target, T beta, T scale", "T grad",
    "const T d = (pred - target) / beta; grad = (d > (T)1 ? (T)1 : (d < (T)-1 ? (T)-1 : d)) * scale",
    _smoothL1GradNumpy,
)


class SmoothL1(Cost):
    """``SmoothL1(beta=1.0)``: quadratic within beta of the target, linear (slope 1) beyond."""

    def __init__(self, beta=1.0):
        self.beta = checkNumber(beta, "SmoothL1 beta", CostError, low=0, lowOpen=True)
        super().__init__()

    def calcError(self, pred, target):
        d = xp.abs(pred - target)
        return xp.where(d < self.beta, d * d / (2 * self.beta), d - self.beta / 2).mean()

    def calcGrad(self, pred, target):
        return smoothL1GradKer(pred, target, self.beta, 1.0 / pred.size, xp.empty_like(pred))
