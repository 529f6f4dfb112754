"""AvgPool3D: y = the mean of each (kd, kh, kw) window of NCDHW data, padding counted as zeros (the window's
size is the divisor; in ceil mode a window past the trailing pad divides by its taps inside the padded input,
as PyTorch does):

    y[n, c, oz, oy, ox] = (1 / (kd kh kw)) Σ_{kz, ky, kx} x[n, c, oz sd - pd + kz, oy sh - ph + ky, ox sw - pw + kx],

and the gradient spreads grad / (kd kh kw) evenly over the window (col2vol sums it into the voxels).
"""

import numpy

from minidl.backend import xp
from minidl.nn.avgpool2d import windowSizes
from minidl.nn.pool3d import Pool3D


class AvgPool3D(Pool3D):
    """``AvgPool3D(size=2, stride=2, pad=0, ceilMode=False)`` on (N, C, D, H, W) data."""

    def windowSizes(self):
        """The divisor of each output position, (outD outH outW,)."""
        lengths = self.inData.shape[2:]
        return windowSizes(lengths, self.window, self.window.outShape(*lengths, ""), self.inData.dtype)

    def pool(self, col):
        return col.sum(axis=1) / self.windowSizes() if self.window.ceilMode else col.mean(axis=1)

    def unpool(self, grad):
        taps = int(numpy.prod(self.window.size))
        share = grad / self.windowSizes() if self.window.ceilMode else grad / grad.dtype.type(taps)
        return xp.broadcast_to(share[:, None, :], (grad.shape[0], taps, grad.shape[1]))
