"""Flatten: (N, d1, d2, ...) -> (N, d1 d2 ...); the gradient is reshaped back."""

import math

from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray


class Flatten(Module):
    """Keeps the batch axis and joins all the others (a view, no copy)."""

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        if data.ndim < 1:
            raise ModuleError(f"{self!r}: input must have a batch axis, got shape {data.shape}")

    def updData(self, data):
        return data.reshape(data.shape[0], math.prod(data.shape[1:]))  # not -1: an empty batch has sides too

    def updGrad(self, grad):
        return grad.reshape(self.inData.shape)
