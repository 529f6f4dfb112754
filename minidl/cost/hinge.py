"""Hinge (binary): targets t in {-1, 1}; error = mean(max(0, 1 - t pred)), grad = -t [t pred < 1] / pred.size."""

import numpy

from minidl.backend import scratch, xp
from minidl.cost.cost import Cost, meanGradKernel
from minidl.errors import CostError


def _hingeGradNumpy(pred, target, scale, grad):
    margin = scratch(pred.shape, pred.dtype, "margin")
    numpy.multiply(pred, target, out=margin)
    numpy.multiply(target, -scale, out=grad)
    numpy.copyto(grad, 0, where=margin >= 1)
    numpy.copyto(grad, margin, where=numpy.isnan(margin))  # NaN scores give NaN gradients


hingeGradKer = meanGradKernel(
    "minidl_hinge_grad",
    "const T margin = target * pred; "
    "grad = margin < (T)1 ? (T)(-target * scale) : (isnan(margin) ? margin : (T)0)", _hingeGradNumpy,
)


class Hinge(Cost):
    """Binary hinge loss on raw scores; targets of the predictions' shape and dtype, each -1 or 1."""

    gradKernel = hingeGradKer

    def checkTarget(self, pred, target):
        super().checkTarget(pred, target)
        wrong = ((target != 1) & (target != -1)).ravel()
        self.noteValues("targets", wrong.any(), (target.ravel()[wrong.argmax()],), self._targetError)

    def _targetError(self, value):
        raise CostError(f"{self!r}: targets must be -1 or 1, got the value {value}")

    def calcError(self, pred, target):
        return xp.maximum(1 - target * pred, 0).mean()
