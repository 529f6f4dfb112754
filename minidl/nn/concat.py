"""Concat: joins inputs along ``axis``; the gradient is split back into the inputs' pieces."""

import numpy

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArrayList
from minidl.validation import checkInteger


class Concat(Module):
    """Concatenates two or more inputs along ``axis`` (default 1, the feature axis)."""

    def __init__(self, axis=1, name=None):
        super().__init__(name)
        self.axis = checkInteger(axis, "Concat axis")

    def checkData(self, data):
        checkArrayList(data, f"{self!r}: input", sameShape=False)
        first = data[0]
        if not -first.ndim <= self.axis < first.ndim:
            raise ModuleError(f"{self!r}: axis {self.axis} is out of range for inputs of shape {first.shape}")
        axis = self.axis % first.ndim
        for item in data:
            if item.shape[:axis] + item.shape[axis + 1:] != first.shape[:axis] + first.shape[axis + 1:]:
                raise ModuleError(
                    f"{self!r}: inputs must match except along axis {self.axis}, got {[a.shape for a in data]}"
                )

    def updData(self, data):
        return xp.concatenate(data, axis=self.axis)

    def updGrad(self, grad):
        bounds = numpy.cumsum([item.shape[self.axis] for item in self.inData])[:-1]
        return [xp.ascontiguousarray(piece) for piece in xp.split(grad, bounds, axis=self.axis)]
