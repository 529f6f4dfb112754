"""Cast: data = inData converted to ``dtype``; grad_in = grad converted back to the input's dtype.

At the edges of a half-precision graph (``module.calcMode(numpy.float16)``): float32 data in, float16 through the
network, and a ``Cast(numpy.float32)`` before a cost that should score float32 scores. Converting rounds to
nearest (float16 overflows to ±inf past 65504); the gradient is converted the same way on the way back.
"""

import numpy

from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.variable import FLOAT_DTYPES


class Cast(Module):
    """``Cast(dtype)``: converts activations to ``dtype`` (float16, float32 or float64) and gradients back."""

    def __init__(self, dtype, name=None):
        super().__init__(name)
        try:  # numpy.dtype(None) would be float64
            if dtype is None:
                raise TypeError("no dtype")
            self.dtype = numpy.dtype(dtype)
        except TypeError as error:
            raise ModuleError(f"Cast needs a dtype (float16, float32 or float64), got {dtype!r}") from error
        if self.dtype not in FLOAT_DTYPES:
            raise ModuleError(f"Cast needs float16, float32 or float64, got {self.dtype}")

    def __repr__(self):
        return f"Cast({self.dtype})" if not self.name else f"Cast {self.name!r}"

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        if numpy.dtype(data.dtype) not in FLOAT_DTYPES:
            raise ModuleError(f"{self!r}: input must be float16, float32 or float64, got {data.dtype}")

    def updData(self, data):
        return data.astype(self.dtype)

    def updGrad(self, grad):
        return grad.astype(self.inData.dtype)
