"""Reshape: data viewed with a new shape of the same size (one axis may be -1); the gradient is reshaped
back."""

import math

from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.validation import checkInteger


class Reshape(Module):
    """``Reshape((-1, 16, 5, 5))``: the whole shape, batch axis included; one entry may be -1 (inferred)."""

    def __init__(self, shape, name=None):
        super().__init__(name)
        if not isinstance(shape, (tuple, list)):
            raise ModuleError(f"Reshape shape must be a tuple of sides, batch axis included, got {shape!r}")
        self.shape = tuple(checkInteger(side, f"Reshape shape {shape!r}: each side") for side in shape)
        if self.shape.count(-1) > 1 or any(side < 1 and side != -1 for side in self.shape):
            raise ModuleError(f"Reshape shape must hold positive sides and at most one -1, got {shape!r}")

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        known = math.prod(side for side in self.shape if side != -1)
        fits = data.size % known == 0 if -1 in self.shape else data.size == known
        if not fits:
            raise ModuleError(f"{self!r}: cannot view input of shape {data.shape} ({data.size} elements) as "
                              f"{self.shape}")

    def updData(self, data):
        return data.reshape(self.shape)

    def updGrad(self, grad):
        return grad.reshape(self.inData.shape)
