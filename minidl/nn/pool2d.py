"""Pool2D: the base of MaxPool2D and AvgPool2D, which reduce each window of an NCHW input to one value.

By default the windows are gathered by im2col into col (N C, kh kw, outH outW); a subclass reduces col along
its window axis in ``pool(col)`` and, in ``unpool(grad)``, spreads each output gradient back over its window
(an Elementwise kernel over col), which col2im then sums into the input's pixels (AvgPool2D). MaxPool2D
replaces both directions by direct kernels.
"""

import numpy

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.im2col import Window, col2im, im2col
from minidl.nn.module import Module, checkArray


class Pool2D(Module):
    """``size``, ``stride``, ``pad``: an int or a pair; pad may be at most half the window, so that every
    window holds at least one input pixel. ``ceilMode``: count a last, partial window as PyTorch's ceil_mode."""

    padValue = 0.0

    def __init__(self, size=2, stride=2, pad=0, ceilMode=False, name=None):
        super().__init__(name)
        self.window = Window(size, stride, pad, ceilMode=ceilMode)
        if any(pad > size // 2 for pad, size in zip(self.window.pad, self.window.size)):
            raise ModuleError(f"{type(self).__name__}: pad {self.window.pad} must be at most half the window "
                              f"{self.window.size}")

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=4)
        if not numpy.issubdtype(data.dtype, numpy.floating):  # padding is -inf for max; the mean is fractional
            raise ModuleError(f"{self!r}: input must have a floating dtype, got {data.dtype}")
        self.window.outShape(*data.shape[2:], f"{self!r}")

    def updData(self, data):
        col = im2col(data, self.window, self.padValue)
        batch, maps, _, _, outH, outW = col.shape
        return self.pool(col.reshape(batch * maps, -1, outH * outW)).reshape(batch, maps, outH, outW)

    def updGrad(self, grad):
        batch, maps, outH, outW = grad.shape
        gradCol = self.unpool(xp.ascontiguousarray(grad).reshape(batch * maps, -1))
        return col2im(gradCol.reshape(batch, maps, *self.window.size, outH, outW), self.window, *self.planeShape())

    def planeShape(self):
        """(height, width) of the input the windows slide over (MaxPool1D's (length, 1))."""
        return self.inData.shape[2:]

    def pool(self, col):
        """(N C, kh kw, outH outW) -> (N C, outH outW)."""
        raise NotImplementedError

    def unpool(self, grad):
        """grad (N C, outH outW) -> the gradient of col, (N C, kh kw, outH outW)."""
        raise NotImplementedError
