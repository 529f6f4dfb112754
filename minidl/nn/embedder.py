"""Embedder: a lookup table, y[..., :] = W[index[...], :] for integer indices of any shape.

Backward adds each row of grad into ∂W at its index (twice for an index met twice); indices are not
differentiable, so the input gradient is None.
"""

import numpy

from minidl.backend import scatterAdd, toDevice
from minidl.errors import ModuleError
from minidl.nn.linear import initWeights
from minidl.nn.module import Module, checkArray
from minidl.validation import checkSize
from minidl.variable import Variable


class Embedder(Module):
    """``Embedder(vocabulary, size)``: W of shape (vocabulary, size); input an integer array of indices in
    [0, vocabulary), output of shape index.shape + (size,)."""

    def __init__(self, vocabulary, size, initscheme="xavier", dtype=numpy.float32, name=None):
        super().__init__(name)
        vocabulary, size = checkSize(vocabulary, "Embedder vocabulary"), checkSize(size, "Embedder size")
        self.vocabulary, self.size = vocabulary, size
        self.setVar("W", Variable(toDevice(initWeights(initscheme, vocabulary, size), dtype=dtype), name="W"))

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        if not numpy.issubdtype(data.dtype, numpy.integer):
            raise ModuleError(f"{self!r}: input must be integer indices, got {data.dtype} {data.shape}")
        if data.size and (int(data.min()) < 0 or int(data.max()) >= self.vocabulary):
            raise ModuleError(f"{self!r}: indices must lie in [0, {self.vocabulary}), got values in "
                              f"[{int(data.min())}, {int(data.max())}] (shape {data.shape})")

    def updData(self, data):
        return self.W[data]

    def updGrad(self, grad):
        return None

    def accGradParams(self, grad):
        scatterAdd(self.vars["W"].grad, self.inData.ravel(), grad.reshape(-1, self.size))
