"""AvgPool2D: y = the mean of each window, padding counted as zeros (the window's size is always the
divisor); the gradient spreads grad / (kh kw) evenly over the window."""

import numpy

from minidl.backend import Elementwise, xp
from minidl.nn.pool2d import Pool2D


def _avgUnpoolNumpy(grad, window, points, scale, gradCol):
    batch, maps = gradCol.shape[:2]
    numpy.multiply(grad.reshape(batch, maps, 1, points), scale, out=gradCol)


avgUnpoolKer = Elementwise(
    "minidl_avg_unpool",
    "raw T grad, int32 window, int32 points, T scale",
    "T gradCol",
    "gradCol = grad[i / ((long long)points * window) * points + i % points] * scale",
    _avgUnpoolNumpy,
)


class AvgPool2D(Pool2D):
    """``AvgPool2D(size=2, stride=2, pad=0)`` on (N, C, H, W) data."""

    def pool(self, col):
        return col.mean(axis=2)

    def unpool(self, grad):
        batch, maps, outH, outW = grad.shape
        window = self.window.size[0] * self.window.size[1]
        gradCol = xp.empty((batch, maps, window, outH * outW), dtype=grad.dtype)
        return avgUnpoolKer(xp.ascontiguousarray(grad), window, outH * outW, 1.0 / window, gradCol)
