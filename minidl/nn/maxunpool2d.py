"""MaxUnpool2D: the partial inverse of a MaxPool2D, which puts each value back where its window's maximum was.

Made from the MaxPool2D whose windows it undoes (``MaxUnpool2D(maxpool)``, as PuzzleLib's), it reads that
pool's winning taps of its latest forward pass: x (N, C, outH, outW) of the pool's output shape maps to y
(N, C, H, W) of the pool's input shape with

    y[n, c, pixel] = Σ over the windows (oy, ox) whose winning tap read that pixel of x[n, c, oy, ox]

(0 at the pixels no window chose; overlapping windows that chose one pixel add up: MaxPool2D's backward
pass, the same kernels). Backward, the adjoint: ∂x[n, c, oy, ox] = grad[n, c, the pixel its winning tap read]
(0 where that tap was padding, which wins only a window of -inf values).
"""

import numpy

from minidl.backend import Elementwise, xp
from minidl.errors import ModuleError
from minidl.nn.maxpool2d import GEOMETRY, MaxPool2D, maxUnpool
from minidl.nn.module import Module, checkArray


def _maxGatherNumpy(grad, argmax, batch, maps, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW, gradY):
    oy = (numpy.arange(outH) * sy - ph)[:, None] + argmax // kw * dy
    ox = (numpy.arange(outW) * sx - pw)[None, :] + argmax % kw * dx
    inside = (oy >= 0) & (oy < h) & (ox >= 0) & (ox < w)
    flat = numpy.where(inside, oy * w + ox, 0).reshape(batch * maps, -1)
    read = numpy.take_along_axis(grad.reshape(batch * maps, -1), flat, axis=1).reshape(gradY.shape)
    numpy.copyto(gradY, numpy.where(inside, read, gradY.dtype.type(0)))


# One element per output position (size: N C outH outW): the gradient at the pixel its winning tap read.
maxGatherKer = Elementwise(
    "minidl_max_gather",
    "raw T grad, int32 argmax, " + GEOMETRY,
    "T gradY",
    "const long long plane = i / ((long long)outH * outW); const int out = (int)(i - plane * outH * outW); "
    "const int yy = out / outW * sy - ph + argmax / kw * dy, xx = out % outW * sx - pw + argmax % kw * dx; "
    "gradY = (yy >= 0 && yy < h && xx >= 0 && xx < w) ? grad[(plane * h + yy) * w + xx] : (T)0",
    _maxGatherNumpy,
)


class MaxUnpool2D(Module):
    """``MaxUnpool2D(maxpool)``: ``maxpool`` a MaxPool2D that has run forward on the data whose pooled maps this
    module unpools."""

    cacheAttrs = ("inData", "data", "argmax", "scalars")

    def __init__(self, maxpool, name=None):
        super().__init__(name)
        if type(maxpool) is not MaxPool2D:
            raise ModuleError(f"MaxUnpool2D: maxpool must be a MaxPool2D, got {type(maxpool).__name__}")
        self.maxpool = maxpool
        self.argmax = self.scalars = None

    def checkData(self, data):
        if self.maxpool.argmax is None:
            raise ModuleError(f"{self!r}: its {self.maxpool!r} has not run forward yet, so no window has a maximum")
        checkArray(data, f"{self!r}: input", ndim=4, dtype=self.maxpool.data.dtype)
        if data.shape != self.maxpool.data.shape:
            raise ModuleError(f"{self!r}: input must have the shape of its {self.maxpool!r}'s output, "
                              f"{self.maxpool.data.shape}, got {data.shape}")

    def updData(self, data):
        self.argmax = self.maxpool.argmax
        self.scalars = self.maxpool.window.scalars(*self.maxpool.inData.shape)
        return maxUnpool(data, self.argmax, self.scalars)

    def updGrad(self, grad):
        return maxGatherKer(xp.ascontiguousarray(grad), self.argmax, *self.scalars,
                            xp.empty(self.inData.shape, dtype=grad.dtype))
