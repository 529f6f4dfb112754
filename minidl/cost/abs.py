"""Abs (L1): error = mean(|pred - target|), grad = sign(pred - target) / pred.size (0 where they are equal)."""

import numpy

from minidl.backend import xp
from minidl.cost.cost import Cost, meanGradKernel


def _absGradNumpy(pred, target, scale, grad):
    numpy.subtract(pred, target, out=grad)
    numpy.sign(grad, out=grad)
    grad *= scale


absGradKer = meanGradKernel(
    "minidl_abs_grad",
    "const T d = pred - target; "
    "grad = d > (T)0 ? scale : (d < (T)0 ? (T)(-scale) : (isnan(d) ? d : (T)0))", _absGradNumpy,
)


class Abs(Cost):
    """Mean absolute error (L1)."""

    gradKernel = absGradKer

    def calcError(self, pred, target):
        return xp.abs(pred - target).mean()
