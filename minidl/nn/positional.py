"""Positional embeddings for sequences of shape (time, batch, size): y[t] = x[t] + P[t].

Learned: P is a parameter ``W`` of shape (maxLength, size), drawn normal with std 0.02 (as GPT-2), and
∂W[t] += Σ_batch grad[t]. Sinusoidal (Vaswani et al. 2017): P[t, 2i] = sin(t / 10000^(2i/size)),
P[t, 2i+1] = cos(t / 10000^(2i/size)), fixed. Either way ∂x = grad.
"""

import numpy

from minidl.backend import generator, toDevice
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.variable import Variable


def sinusoids(maxLength, size):
    """The (maxLength, size) table of sines and cosines of geometrically spaced wavelengths."""
    positions = numpy.arange(maxLength)[:, None]
    rates = 1.0 / 10000 ** (numpy.arange(0, size, 2) / size)
    table = numpy.zeros((maxLength, size))
    table[:, 0::2] = numpy.sin(positions * rates)
    table[:, 1::2] = numpy.cos(positions * rates[:size // 2])
    return table


class PositionalEmbedding(Module):
    """``PositionalEmbedding(maxLength, size, learned=True)``: adds a vector per position to sequences of at
    most ``maxLength`` steps."""

    def __init__(self, maxLength, size, learned=True, dtype=numpy.float32, name=None):
        super().__init__(name)
        for what, value in (("maxLength", maxLength), ("size", size)):
            if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value < 1:
                raise ModuleError(f"PositionalEmbedding {what} must be a positive integer, got {value!r}")
        self.maxLength, self.size, self.learned = int(maxLength), int(size), bool(learned)
        if learned:
            table = generator().normal(0.0, 0.02, size=(self.maxLength, self.size))
            self.setVar("W", Variable(toDevice(table, dtype=dtype), name="W"))
            self.table = None
        else:
            self.table = toDevice(sinusoids(self.maxLength, self.size), dtype=dtype)

    def castBuffers(self, dtype):
        """calcMode: the fixed table in ``dtype`` too (made again from its float64 values), so that the module takes
        input of ``dtype`` (a learned table is the parameter ``W``, converted with the others)."""
        if not self.learned:
            self.table = toDevice(sinusoids(self.maxLength, self.size), dtype=dtype)

    def stateDtypes(self):
        """The fixed table's dtype too, which a saved architecture records (the module has no parameter then)."""
        return super().stateDtypes() | ({self.table.dtype} if self.table is not None else set())

    def positions(self):
        return self.W if self.learned else self.table

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=3, dtype=self.positions().dtype)
        if data.shape[2] != self.size or data.shape[0] > self.maxLength:
            raise ModuleError(f"{self!r}: input must have shape (time <= {self.maxLength}, batch, {self.size}), "
                              f"got {data.shape}")

    def updData(self, data):
        return data + self.positions()[:data.shape[0], None, :]

    def updGrad(self, grad):
        return grad

    def accGradParams(self, grad):
        if self.learned:
            self.vars["W"].grad[:grad.shape[0]] += grad.sum(axis=1)
