"""Replicate: a list of ``times`` outputs, each the input itself, [x, x, ..., x]; the gradient is the sum of
the outputs' gradients, ∂e/∂x = Σₖ gradₖ. In a Graph, ``node[k]`` feeds copy k to a child."""

from functools import reduce
from operator import add

from minidl.errors import ModuleError
from minidl.nn.module import Module
from minidl.validation import checkSize


class Replicate(Module):
    """``Replicate(times)``: one input, ``times`` (at least 2) outputs that are that input."""

    def __init__(self, times, name=None):
        super().__init__(name)
        self.times = checkSize(times, "Replicate times")
        if self.times < 2:
            raise ModuleError(f"Replicate times must be at least 2, got {times!r}")

    def updData(self, data):
        return [data] * self.times

    def updGrad(self, grad):
        return reduce(add, grad)
