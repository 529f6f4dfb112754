"""Pool3D: the base of MaxPool3D and AvgPool3D, which reduce each window of an NCDHW input to one value.

vol2col gathers the windows into col (N C, kd kh kw, outD outH outW) (``minidl.nn.vol2col``: the 2-D im2col
per depth plane, then the depth taps); a subclass reduces col along its window axis in ``pool(col)`` and, in
``unpool(grad)``, gives each output's gradient to the taps of its window, which col2vol sums into the voxels.
"""

import numpy

from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.nn.vol2col import Window3D, col2vol, vol2col


class Pool3D(Module):
    """``size``, ``stride``, ``pad``: an int or a (depth, rows, cols) triple; pad may be at most half the window,
    so that every window holds at least one input voxel. ``ceilMode``: count a last, partial window as PyTorch's
    ceil_mode."""

    padValue = 0.0

    def __init__(self, size=2, stride=2, pad=0, ceilMode=False, name=None):
        super().__init__(name)
        self.window = Window3D(size, stride, pad, ceilMode=ceilMode)
        if any(pad > size // 2 for pad, size in zip(self.window.pad, self.window.size)):
            raise ModuleError(f"{type(self).__name__}: pad {self.window.pad} must be at most half the window "
                              f"{self.window.size}")

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=5)
        if not numpy.issubdtype(data.dtype, numpy.floating):  # padding is -inf for max; the mean is fractional
            raise ModuleError(f"{self!r}: input must have a floating dtype, got {data.dtype}")
        self.window.outShape(*data.shape[2:], f"{self!r}")

    def updData(self, data):
        batch, maps = data.shape[:2]
        outShape = self.window.outShape(*data.shape[2:], repr(self))
        col = vol2col(data, self.window, self.padValue).reshape(batch * maps, -1, int(numpy.prod(outShape)))
        return self.pool(col).reshape(batch, maps, *outShape)

    def updGrad(self, grad):
        batch, maps = grad.shape[:2]
        gradCol = self.unpool(grad.reshape(batch * maps, -1))
        return col2vol(gradCol.reshape(batch, maps, *self.window.size, *grad.shape[2:]), self.window,
                       *self.inData.shape[2:])

    def pool(self, col):
        """(N C, kd kh kw, outD outH outW) -> (N C, outD outH outW)."""
        raise NotImplementedError

    def unpool(self, grad):
        """grad (N C, outD outH outW) -> the gradient of col, (N C, kd kh kw, outD outH outW)."""
        raise NotImplementedError
