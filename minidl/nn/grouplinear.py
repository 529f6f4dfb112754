"""GroupLinear: one Linear layer per group, y[:, g] = x[:, g] @ W[g] + b[g] for inputs x of shape
(batch, groups, insize) (or (groups, batch, insize) with ``batchDim=1``), W of shape (groups, insize, outsize)
and b of shape (groups, outsize).

``inmode="one"``: the input has one group, read by every group's weights (x[:, 0] @ W[g]); ``wmode="one"``:
one W and b shared by every group (``groups`` may then be None: any number of groups).

Backward: ∂e/∂x[:, g] = grad[:, g] @ W[g]ᵀ (summed over g for ``inmode="one"``), ∂W[g] += x[:, g]ᵀ @ grad[:, g]
and ∂b[g] += Σ_batch grad[:, g] (summed over g for ``wmode="one"``).
"""

import numpy

from minidl.backend import toDevice, xp
from minidl.backend.products import matmul
from minidl.errors import ModuleError
from minidl.nn.linear import initWeights
from minidl.nn.module import Module, checkArray
from minidl.validation import checkSize
from minidl.variable import Variable

MODES = ("full", "one")


class GroupLinear(Module):
    """``GroupLinear(groups, insize, outsize, useBias=True, initscheme="xavier", inmode="full", wmode="full",
    batchDim=0, dtype=float32)``."""

    def __init__(self, groups, insize, outsize, useBias=True, initscheme="xavier", inmode="full", wmode="full",
                 batchDim=0, dtype=numpy.float32, name=None):
        super().__init__(name)
        if inmode not in MODES or wmode not in MODES:
            raise ModuleError(f"GroupLinear inmode and wmode must be 'full' or 'one', got {inmode!r}, {wmode!r}")
        if batchDim not in (0, 1) or isinstance(batchDim, bool):
            raise ModuleError(f"GroupLinear batchDim must be 0 or 1, got {batchDim!r}")
        if groups is None and wmode != "one":
            raise ModuleError("GroupLinear groups may be None only with wmode='one' (one W for any groups)")
        self.groups = None if groups is None else checkSize(groups, "GroupLinear groups")
        self.insize, self.outsize = checkSize(insize, "GroupLinear insize"), checkSize(outsize, "GroupLinear outsize")
        self.inmode, self.wmode, self.batchDim, self.useBias = inmode, wmode, batchDim, useBias
        wgroups = self.groups if wmode == "full" else 1
        weights = initWeights(initscheme, self.insize, self.outsize, shape=(wgroups, self.insize, self.outsize))
        self.setVar("W", Variable(toDevice(weights, dtype=dtype), name="W"))
        if useBias:
            self.setVar("b", Variable(xp.zeros((wgroups, self.outsize), dtype=dtype), name="b"))

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=3, dtype=self.W.dtype)
        groups = data.shape[1 - self.batchDim]
        expected = 1 if self.inmode == "one" else self.groups
        if (expected is not None and groups != expected) or data.shape[2] != self.insize:
            layout = "(batch, groups, insize)" if self.batchDim == 0 else "(groups, batch, insize)"
            raise ModuleError(f"{self!r}: input must be {layout} with {expected or 'any number of'} groups and "
                              f"insize {self.insize}, got {data.shape}")

    def _groupsFirst(self, array):
        """(groups, batch, size) view of an array in this module's layout."""
        return array.transpose(1, 0, 2) if self.batchDim == 0 else array

    def updData(self, data):
        out = matmul(self._groupsFirst(data), self.W)
        if self.useBias:
            out += self.b[:, None, :]
        return xp.ascontiguousarray(self._groupsFirst(out))

    def updGrad(self, grad):
        ingrad = matmul(self._groupsFirst(grad), self.W.transpose(0, 2, 1))
        if self.inmode == "one":
            ingrad = ingrad.sum(axis=0, keepdims=True)
        return xp.ascontiguousarray(self._groupsFirst(ingrad))

    def accGradParams(self, grad):
        grad, data = self._groupsFirst(grad), self._groupsFirst(self.inData)
        wgrad = matmul(data.transpose(0, 2, 1), grad)
        bgrad = grad.sum(axis=1)
        if self.wmode == "one":
            wgrad, bgrad = wgrad.sum(axis=0, keepdims=True), bgrad.sum(axis=0, keepdims=True)
        self.vars["W"].grad += wgrad
        if self.useBias:
            self.vars["b"].grad += bgrad
