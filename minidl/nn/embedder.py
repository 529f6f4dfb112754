"""Embedder: a lookup table, y[..., :] = W[index[...], :] for integer indices of any shape.

Backward adds each row of grad into ∂W at its index (twice for an index met twice); indices are not
differentiable, so the input gradient is None. It is a gather, without atomics, so a step gives the same bits
every time and on every path: the positions are sorted by index (a stable sort: equal indices keep their order),
``bounds[v]`` is where index v's run of positions starts (a binary search per v, ``boundsKer``), and one thread
per element (v, j) of ∂W sums grad[p, j] over its run in position order, then adds the sum to ∂W[v, j]
(``gradKer``): the order ``numpy.add.at`` adds in.

The indices' range is a ``RangeCheck``: checked at the call on the CPU, at the next ``readChecks()`` on a GPU (no
sync in a step); until then an index outside [0, vocabulary) reads a row of zeros and adds to no row.
"""

import numpy

from minidl.backend import Elementwise, RangeCheck, toDevice, xp
from minidl.errors import ModuleError
from minidl.nn.linear import initWeights
from minidl.nn.module import Module, checkArray
from minidl.validation import checkSize
from minidl.variable import Variable


def _lookupNumpy(W, index, size, vocabulary, y):
    valid = (index >= 0) & (index < vocabulary)
    rows = W.reshape(-1, size)[numpy.where(valid, index, 0)]
    y.reshape(rows.shape)[...] = numpy.where(valid[..., None], rows, 0)


lookupKer = Elementwise(
    "minidl_embedder_lookup",
    "raw T W, raw I index, int64 size, int64 vocabulary",
    "T y",
    "const long long k = index[i / size]; y = (k >= 0 && k < vocabulary) ? W[k * size + i % size] : (T)0",
    _lookupNumpy,
)


def _boundsNumpy(ordered, count, bound):
    bound[...] = numpy.searchsorted(ordered[:count], numpy.arange(bound.size), side="left")


# bound[v]: the first position of the sorted indices holding v or more (a binary search per v)
boundsKer = Elementwise(
    "minidl_embedder_bounds",
    "raw I ordered, int64 count",
    "int64 bound",
    "long long low = 0, high = count; "
    "while (low < high) { const long long middle = (low + high) / 2; "
    "if (ordered[middle] < (long long)i) low = middle + 1; else high = middle; } bound = low",
    _boundsNumpy,
)


def _gradNumpy(grad, order, bounds, size, dW):
    rows = grad.reshape(-1, size)
    for v in range(dW.size // size):
        run = order[bounds[v]:bounds[v + 1]]
        total = numpy.zeros(size, dW.dtype)
        for p in run:  # position order, one add at a time: the kernel's sum, bit for bit
            total += rows[p]
        dW.reshape(-1, size)[v] += total


gradKer = Elementwise(
    "minidl_embedder_grad",
    "raw T grad, raw int64 order, raw int64 bounds, int64 size",
    "T dW",
    "const ptrdiff_t v = i / size, j = i % size; T total = (T)0; "
    "for (long long p = bounds[v]; p < bounds[v + 1]; ++p) total += grad[order[p] * size + j]; dW += total",
    _gradNumpy,
)


class Embedder(Module):
    """``Embedder(vocabulary, size)``: W of shape (vocabulary, size); input an integer array of indices in
    [0, vocabulary), output of shape index.shape + (size,)."""

    def __init__(self, vocabulary, size, initscheme="xavier", dtype=numpy.float32, name=None):
        super().__init__(name)
        vocabulary, size = checkSize(vocabulary, "Embedder vocabulary"), checkSize(size, "Embedder size")
        self.vocabulary, self.size = vocabulary, size
        self.setVar("W", Variable(toDevice(initWeights(initscheme, vocabulary, size), dtype=dtype), name="W"))
        self.indexCheck = RangeCheck(self._indexError)

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        if not numpy.issubdtype(data.dtype, numpy.integer):
            raise ModuleError(f"{self!r}: input must be integer indices, got {data.dtype} {data.shape}")
        self.indexCheck.note(data, self.vocabulary)

    def _indexError(self, low, high, vocabulary):
        raise ModuleError(f"{self!r}: indices must lie in [0, {vocabulary}), got values in [{low}, {high}]")

    def updData(self, data):
        data = xp.ascontiguousarray(data)
        return lookupKer(self.W, data, self.size, self.vocabulary, xp.empty(data.shape + (self.size,), self.W.dtype))

    def updGrad(self, grad):
        return None

    def accGradParams(self, grad):
        flat = xp.ascontiguousarray(self.inData).reshape(-1)
        order = xp.argsort(flat, kind="stable")
        bounds = boundsKer(flat[order], flat.size, xp.empty(self.vocabulary + 1, dtype=numpy.int64))
        gradKer(xp.ascontiguousarray(grad), order.astype(numpy.int64, copy=False), bounds, self.size,
                self.vars["W"].grad)
