"""Transpose and SwapAxes: the data's axes permuted (copied C-contiguous, as the kernels downstream take it);
the gradient is permuted back by the inverse permutation."""

import numpy

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray


def _isInteger(value):
    return not isinstance(value, bool) and isinstance(value, (int, numpy.integer))


class AxisPair(Module):
    """The base of SwapAxes and MoveAxis: ``move(array, a, b)`` on the two axes ``pair`` = (a, b) (negative ones
    count from the end) forward, ``move(array, b, a)`` on the gradient."""

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        for axis in self.pair:
            if not -data.ndim <= axis < data.ndim:
                raise ModuleError(f"{self!r}: axis {axis} is out of range for an input of shape {data.shape}")

    def updData(self, data):
        first, second = self.pair
        return xp.ascontiguousarray(self.move(data, first, second))

    def updGrad(self, grad):
        first, second = self.pair
        return xp.ascontiguousarray(self.move(grad, second, first))


class Transpose(Module):
    """``Transpose(axes)``: data.transpose(axes), ``axes`` a permutation of every axis (batch axis included)."""

    def __init__(self, axes, name=None):
        super().__init__(name)
        if not isinstance(axes, (tuple, list)):
            raise ModuleError(f"Transpose axes must be a permutation of 0..n-1, got {axes!r}")
        axes = tuple(axes)
        if not all(_isInteger(axis) for axis in axes) or sorted(axes) != list(range(len(axes))):
            raise ModuleError(f"Transpose axes must be a permutation of 0..n-1, got {axes!r}")
        self.axes = tuple(int(axis) for axis in axes)
        self.inverse = tuple(int(axis) for axis in numpy.argsort(self.axes))

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=len(self.axes))

    def updData(self, data):
        return xp.ascontiguousarray(data.transpose(self.axes))

    def updGrad(self, grad):
        return xp.ascontiguousarray(grad.transpose(self.inverse))


class SwapAxes(AxisPair):
    """``SwapAxes(axis1, axis2)``: two axes exchanged (negative ones count from the end); (batch, time, ...)
    to (time, batch, ...) with ``SwapAxes(0, 1)``."""

    def __init__(self, axis1, axis2, name=None):
        super().__init__(name)
        if not (_isInteger(axis1) and _isInteger(axis2)):
            raise ModuleError(f"SwapAxes takes two integer axes, got {axis1!r} and {axis2!r}")
        self.axis1, self.axis2 = int(axis1), int(axis2)

    @property
    def pair(self):
        return self.axis1, self.axis2

    def move(self, array, first, second):
        return xp.swapaxes(array, first, second)
