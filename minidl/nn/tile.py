"""Tile: the input repeated ``times`` times along ``axis``, y = concat(x, x, ..., x) (side s·times);
the gradient sums the copies' gradients: ∂e/∂x = Σₖ grad[..., k·s:(k+1)·s, ...]."""

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.validation import checkInteger, checkSize


class Tile(Module):
    """``Tile(axis=1, times=3)``: (N, C, ...) to (N, 3C, ...), the copies one after another."""

    def __init__(self, axis, times, name=None):
        super().__init__(name)
        self.axis = checkInteger(axis, "Tile axis")
        self.times = checkSize(times, "Tile times")

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        if not -data.ndim <= self.axis < data.ndim:
            raise ModuleError(f"{self!r}: axis {self.axis} is out of range for an input of shape {data.shape}")

    def updData(self, data):
        return xp.concatenate([data] * self.times, axis=self.axis)

    def updGrad(self, grad):
        axis = self.axis % grad.ndim
        shape = grad.shape[:axis] + (self.times, self.inData.shape[axis]) + grad.shape[axis + 1:]
        return grad.reshape(shape).sum(axis=axis)
