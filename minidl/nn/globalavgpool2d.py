"""GlobalAvgPool2D: the mean of each map, y[n, c, 0, 0] = Σ_{h, w} x[n, c, h, w] / (H W), as PyTorch's
AdaptiveAvgPool2d(1); the gradient spreads grad / (H W) over the map."""

import numpy

from minidl.backend import xp
from minidl.nn.module import Module, checkArray


class GlobalAvgPool2D(Module):
    """``GlobalAvgPool2D()``: (N, C, H, W) -> (N, C, 1, 1)."""

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=4, floating=True)

    def updData(self, data):
        acc = numpy.promote_types(data.dtype, numpy.float32)  # float16 sums overflow past 65504
        return data.mean(axis=(2, 3), keepdims=True, dtype=acc).astype(data.dtype)

    def updGrad(self, grad):
        height, width = self.inData.shape[2:]
        return xp.broadcast_to(grad / (height * width), self.inData.shape).copy()
