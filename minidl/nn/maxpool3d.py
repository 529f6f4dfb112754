"""MaxPool3D: y = the maximum of each (kd, kh, kw) window of NCDHW data (padding never wins: it is -inf; a NaN in
the window wins, as in NumPy's max); the gradient goes to the window's first maximal tap only, in (kz, ky, kx)
order:

    y[n, c, oz, oy, ox] = x[n, c, oz sd - pd + kz, oy sh - ph + ky, ox sw - pw + kx],  (kz, ky, kx) = argmax,
    ∂x[voxel] = Σ over the windows whose winning tap read that voxel of their grad.

The windows come from vol2col (``Pool3D``); the maximum is an argmax over the window axis and a gather, the
gradient a select per tap (its window's grad where the tap won, 0 elsewhere) summed by col2vol.
"""

import numpy

from minidl.backend import xp
from minidl.nn.pool3d import Pool3D


class MaxPool3D(Pool3D):
    """``MaxPool3D(size=2, stride=2, pad=0, ceilMode=False)`` on (N, C, D, H, W) data."""

    cacheAttrs = ("inData", "data", "argmax")
    padValue = -numpy.inf
    argmax = None  # (N C, outD outH outW): the winning tap of each window, read by backward

    def pool(self, col):
        self.argmax = col.argmax(axis=1)  # NaN wins, the first of equals wins (of -0.0 and 0.0 too)
        return xp.take_along_axis(col, self.argmax[:, None], axis=1)[:, 0]

    def unpool(self, grad):
        taps = xp.arange(int(numpy.prod(self.window.size)), dtype=self.argmax.dtype)
        won = taps[None, :, None] == self.argmax[:, None, :]
        return xp.where(won, grad[:, None, :], grad.dtype.type(0))
