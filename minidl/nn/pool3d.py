"""Pool3D: the base of MaxPool3D and AvgPool3D, which reduce each window of an NCDHW input to one value.

vol2col gathers the windows into col (N C, kd kh kw, outD outH outW) (``minidl.nn.vol2col``: the 2-D im2col
per depth plane, then the depth taps); a subclass reduces col along its window axis in ``pool(col)`` and, in
``unpool(grad)``, gives each output's gradient to the taps of its window, which col2vol sums into the voxels.
"""

import numpy

from minidl.nn.pool import Pool
from minidl.nn.vol2col import Window3D, col2vol, vol2col


class Pool3D(Pool):
    """``size``, ``stride``, ``pad``: an int or a (depth, rows, cols) triple (see Pool)."""

    windowType = Window3D
    dataDims = 5

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
