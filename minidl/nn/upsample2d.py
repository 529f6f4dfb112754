"""Upsample2D: (N, C, H, W) -> (N, C, sy H, sx W) by integer scale factors.

"nearest": y[n, c, i, j] = x[n, c, i // sy, j // sx] (``gather2d``); the gradient sums each sy x sx block
(``scatter2d``).
"bilinear" (PyTorch's align_corners=False): output row i reads the source position (i + 1/2) / sy - 1/2,
clamped at 0, between rows low = floor(.) and high = low + 1 (clamped at H - 1) with weights 1 - λ and λ;
columns likewise. Forward gathers the two rows, then the two columns (so a non-finite pixel reaches only the
outputs that read it); per map that is y = A x Bᵀ with A (sy H, H) and B (sx W, W) holding those weights, and
the gradient is ∂x = Aᵀ grad B.

The indices and weights of each geometry are made on the host once and kept on the device (``functools.cache``): a
step uploads nothing, so it can be captured as a CUDA graph, whose launches read them for as long as it lives.
"""

import functools

import numpy

from minidl.backend import toDevice, xp
from minidl.backend.products import matmul
from minidl.errors import ModuleError
from minidl.nn.gather2d import gather2d, indices, scatter2d
from minidl.nn.im2col import pair
from minidl.nn.module import Module, checkArray

MODES = ("nearest", "bilinear")


def neighbours(side, scale):
    """(low, high, λ) of each of the scale side outputs along one axis (align_corners=False)."""
    source = numpy.maximum((numpy.arange(side * scale) + 0.5) / scale - 0.5, 0.0)
    low = numpy.floor(source).astype(numpy.int64)
    return low, numpy.minimum(low + 1, side - 1), source - low


@functools.cache
def interpolation(side, scale, dtype):
    """The (scale side, side) matrix of bilinear weights along one axis."""
    low, high, weight = neighbours(side, scale)
    matrix = numpy.zeros((side * scale, side))
    rows = numpy.arange(side * scale)
    numpy.add.at(matrix, (rows, low), 1 - weight)
    numpy.add.at(matrix, (rows, high), weight)
    return toDevice(matrix, dtype=dtype)


@functools.cache
def deviceNeighbours(side, scale, dtype):
    """``neighbours`` on the device, λ in ``dtype``."""
    low, high, weight = neighbours(side, scale)
    return toDevice(low), toDevice(high), toDevice(weight, dtype=dtype)


@functools.cache
def nearest(side, scale):
    """The source index of each of the scale side outputs along one axis (nearest), on the device."""
    return indices(numpy.arange(side * scale) // scale)


def _interpolate(data, axis, scale):
    """Bilinear interpolation of data along axis 2 or 3: (1 - λ) data[low] + λ data[high]."""
    low, high, weight = deviceNeighbours(data.shape[axis], scale, numpy.dtype(data.dtype))
    weight = weight.reshape((-1, 1) if axis == 2 else (-1,))
    return xp.take(data, low, axis=axis) * (1 - weight) + xp.take(data, high, axis=axis) * weight


class Upsample2D(Module):
    """``Upsample2D(scale=2, mode="nearest")``; scale: a positive int or a pair (rows, columns)."""

    def __init__(self, scale=2, mode="nearest", name=None):
        super().__init__(name)
        self.scale = pair(scale, "Upsample2D: scale")
        if min(self.scale) < 1:
            raise ModuleError(f"Upsample2D: scale must be >= 1, got {self.scale}")
        if mode not in MODES:
            raise ModuleError(f"Upsample2D: mode must be one of {MODES}, got {mode!r}")
        self.mode = mode

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=4, floating=True)

    def _nearest(self, height, width):
        """The source row of each output row and the source column of each output column (nearest)."""
        return nearest(height, self.scale[0]), nearest(width, self.scale[1])

    def _matrices(self, dtype):
        height, width = self.inData.shape[2:]
        dtype = numpy.dtype(dtype)
        return interpolation(height, self.scale[0], dtype), interpolation(width, self.scale[1], dtype)

    def updData(self, data):
        (sy, sx), (height, width) = self.scale, data.shape[2:]
        if self.mode == "nearest":
            return gather2d(data, *self._nearest(height, width))
        return _interpolate(_interpolate(data, 2, sy), 3, sx)

    def updGrad(self, grad):
        height, width = self.inData.shape[2:]
        if self.mode == "nearest":
            return scatter2d(grad, *self._nearest(height, width), height, width)
        rows, cols = self._matrices(grad.dtype)
        return matmul(matmul(rows.T, grad), cols)
