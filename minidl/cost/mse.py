"""MSE: error = mean((pred - target)²) / 2, grad = (pred - target) / pred.size; the error stays on the device."""

import numpy

from minidl.backend import xp
from minidl.cost.cost import Cost, meanGradKernel


def _mseGradNumpy(pred, target, scale, grad):
    numpy.subtract(pred, target, out=grad)
    grad *= scale


mseGradKer = meanGradKernel("minidl_mse_grad", "grad = (pred - target) * scale", _mseGradNumpy)


class MSE(Cost):
    """Mean squared error, halved so that the gradient is (pred - target) / size."""

    gradKernel = mseGradKer

    def calcError(self, pred, target):
        diff = (pred - target).ravel()
        if diff.dtype == numpy.float16:  # its sum of squares would overflow past 65504
            diff = diff.astype(numpy.float32)
        return xp.vdot(diff, diff).astype(numpy.float64) / (2 * pred.size)  # the halving in float64, as before
