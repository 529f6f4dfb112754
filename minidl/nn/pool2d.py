"""Pool2D: the base of MaxPool2D and AvgPool2D, which reduce each window of an NCHW input to one value.

By default the windows are gathered by im2col into col (N C, kh kw, outH outW); a subclass reduces col along
its window axis in ``pool(col)`` and, in ``unpool(grad)``, spreads each output gradient back over its window
(an Elementwise kernel over col), which col2im then sums into the input's pixels (AvgPool2D). MaxPool2D
replaces both directions by direct kernels.
"""


from minidl.backend import xp
from minidl.nn.im2col import Window, col2im, im2col
from minidl.nn.pool import Pool


class Pool2D(Pool):
    """``size``, ``stride``, ``pad``: an int or a pair (see Pool)."""

    windowType = Window
    dataDims = 4

    def updData(self, data):
        col = im2col(data, self.window, self.padValue)
        batch, maps, _, _, outH, outW = col.shape
        return self.pool(col.reshape(batch * maps, -1, outH * outW)).reshape(batch, maps, outH, outW)

    def updGrad(self, grad):
        batch, maps, outH, outW = grad.shape
        gradCol = self.unpool(xp.ascontiguousarray(grad).reshape(batch * maps, -1))
        return col2im(gradCol.reshape(batch, maps, *self.window.size, outH, outW), self.window,
                      *self.planeShape(self.inData.shape))
