"""Dropout: in trainMode y = x / (1 - p) where u >= p, else 0, for u uniform in [0, 1) drawn per element;
backward applies the same mask to the gradient. In evalMode it is the identity.

The uniforms are drawn on the host from ``minidl.backend.generator()`` and copied to the device: one seed
then gives the same masks on the CPU and on the GPU, at the cost of a host-to-device copy of 4 bytes per
element each forward pass.
"""

import numpy

from minidl.backend import Elementwise, generator, scratch, toDevice, xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.validation import checkNumber


def _dropoutNumpy(x, uniform, p, scale, y):
    factor = scratch(x.shape, x.dtype, "factor")
    numpy.greater_equal(uniform, p, out=factor)  # x · 0 where dropped, so NaN and infinities stay NaN there
    factor *= scale
    numpy.multiply(x, factor, out=y)


dropoutKer = Elementwise(
    "minidl_dropout",
    "T x, float32 uniform, float32 p, T scale",
    "T y",
    "y = x * (uniform < p ? (T)0 : scale)",
    _dropoutNumpy,
)


class Dropout(Module):
    """``Dropout(p=0.5)``: each element is zeroed with probability p in trainMode (0 <= p < 1)."""

    cacheAttrs = ("inData", "data", "uniform")

    def __init__(self, p=0.5, name=None):
        super().__init__(name)
        self.p = checkNumber(p, "Dropout probability p", low=0, high=1, highOpen=True)
        self.uniform = None

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        if not numpy.issubdtype(data.dtype, numpy.floating):
            raise ModuleError(f"{self!r}: input must have a floating dtype, got {data.dtype}")

    def updData(self, data):
        if not self.train:
            self.uniform = None
            return data
        self.uniform = toDevice(generator().random(data.shape, dtype=numpy.float32))
        return self._mask(data)

    def updGrad(self, grad):
        return grad if self.uniform is None else self._mask(grad)

    def _mask(self, array):
        array = xp.ascontiguousarray(array)
        return dropoutKer(array, self.uniform, self.p, 1 / (1 - self.p), xp.empty_like(array))
