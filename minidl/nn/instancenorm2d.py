"""InstanceNorm2D: each map of each sample normalised over its own positions, GroupNorm with one map per group.

    y[n, c] = scale[c] (x[n, c] - mean_{h, w} x[n, c]) / sqrt(var_{h, w} x[n, c] + epsilon) + bias[c]
"""

import numpy

from minidl.nn.groupnorm import GroupNorm


class InstanceNorm2D(GroupNorm):
    """``InstanceNorm2D(maps, epsilon=1e-5)`` on (N, maps, H, W) data; Variables ``scale`` and ``bias`` as
    PyTorch's InstanceNorm2d(maps, affine=True) (no running statistics: the same in evalMode)."""

    ndim = 4

    def __init__(self, maps, epsilon=1e-5, dtype=numpy.float32, name=None):
        super().__init__(maps, maps, epsilon, dtype, name)
