"""Dropout: in trainMode y = x / (1 - p) where u >= p, else 0 (x · 0: NaN and infinities stay NaN there), for u
uniform in [0, 1) per element; backward applies the same mask to the gradient. In evalMode, or with p = 0, it is
the identity and draws nothing.

u is Philox4x32-10's uniform of element i of one device draw (``minidl.backend.deviceDraw()``: a seed and a
counter): the kernel computes it in place, so no mask is drawn on the host, copied or even stored: backward
recomputes the same u from the same (seed, counter). One seed gives the same masks on every device and path.
"""

import numpy

from minidl.backend import Elementwise, deviceDraw, scratch, xp
from minidl.backend.philox import PREAMBLE, uniformNumpy
from minidl.nn.module import Module, checkArray
from minidl.validation import checkNumber


def _dropoutNumpy(x, seed, counter, p, scale, y):
    factor = scratch(x.shape, x.dtype, "factor")
    uniform = uniformNumpy(seed, counter, numpy.arange(x.size)).reshape(x.shape)
    numpy.greater_equal(uniform, p, out=factor)  # x · 0 where dropped, so NaN and infinities stay NaN there
    factor *= scale
    numpy.multiply(x, factor, out=y)


dropoutKer = Elementwise(
    "minidl_dropout",
    "T x, uint64 seed, uint64 counter, float32 p, T scale",
    "T y",
    "y = x * (minidl_uniform(seed, counter, i) < p ? (T)0 : scale)",
    _dropoutNumpy,
    preamble=PREAMBLE,
)


def dropout(array, draw, p):
    """``array`` with dropout at rate p under the device draw ``draw`` = (seed, counter): a new array."""
    array = xp.ascontiguousarray(array)
    return dropoutKer(array, *draw, p, 1 / (1 - p), xp.empty_like(array))


class Dropout(Module):
    """``Dropout(p=0.5)``: each element is zeroed with probability p in trainMode (0 <= p < 1)."""

    cacheAttrs = ("inData", "data", "draw")

    def __init__(self, p=0.5, name=None):
        super().__init__(name)
        self.p = checkNumber(p, f"{type(self).__name__} probability p", low=0, high=1, highOpen=True)
        self.draw = None

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", floating=True)

    def updData(self, data):
        if not self.train or self.p == 0:
            self.draw = None
            return data
        self.draw = deviceDraw()
        return self.mask(data)

    def updGrad(self, grad):
        return grad if self.draw is None else self.mask(grad)

    def mask(self, array):
        """``array`` times this pass's mask (the draw of its forward), a new array."""
        return dropout(array, self.draw, self.p)
