"""SubtractMean: subtractive local normalisation. On (N, C, H, W) data, with the size x size window of rows and
columns centred on each position p (size odd, so size // 2 on each side) and m[p] the mean of x over it,

    y[p] = x[p] - m[p],   m[p] = Σ_{q in window} x[q] / div[p],

div[p] = size² with ``includePad`` (positions beyond the map count as zeros, as average pooling with padding
and count_include_pad), else the number of window positions inside the map. Backward, the window being
symmetric: ∂x[r] = grad[r] - Σ_{p : r in window(p)} grad[p] / div[p]. Computed in float32 at least.
"""

import numpy

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.nn.windowsum import planeWindowSum
from minidl.validation import checkInteger


def checkOddSize(size, what):
    """``size`` as an int: odd and above 1 (a window centred on its position)."""
    size = checkInteger(size, what)
    if size % 2 != 1 or size == 1:
        raise ModuleError(f"{what} must be odd and > 1 (a centred window), got {size}")
    return size


def windowCounts(height, width, radius, dtype):
    """(height, width): how many positions of the (2 radius + 1)² window centred on each position lie in the map."""
    def along(length):
        index = xp.arange(length)
        return xp.minimum(index, radius) + xp.minimum(length - 1 - index, radius) + 1
    return (along(height)[:, None] * along(width)[None, :]).astype(dtype)


class SubtractMean(Module):
    """``SubtractMean(size=5, includePad=True)`` on (batch, maps, H, W) data."""

    cacheAttrs = ("inData", "data", "divisor")

    def __init__(self, size=5, includePad=True, name=None):
        super().__init__(name)
        self.size = checkOddSize(size, "SubtractMean size")
        if not isinstance(includePad, bool):
            raise ModuleError(f"SubtractMean includePad must be True or False, got {includePad!r}")
        self.includePad = includePad
        self.divisor = None

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=4, floating=True)

    def updData(self, data):
        x = data.astype(numpy.promote_types(data.dtype, numpy.float32))
        radius = self.size // 2
        self.divisor = (float(self.size * self.size) if self.includePad
                        else windowCounts(data.shape[2], data.shape[3], radius, x.dtype))
        return (x - planeWindowSum(x, radius, radius) / self.divisor).astype(data.dtype)

    def updGrad(self, grad):
        g = grad.astype(numpy.promote_types(grad.dtype, numpy.float32))
        radius = self.size // 2
        return (g - planeWindowSum(g / self.divisor, radius, radius)).astype(grad.dtype)
