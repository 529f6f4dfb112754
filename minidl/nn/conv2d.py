"""Conv2D: a 2-D convolution (cross-correlation) of NCHW data through im2col and a matrix product.

    y[n, o, oy, ox] = b[o] + Σ_{c in o's group, ky, kx} W[o, c, ky, kx] x[n, c, oy sy - ph + ky dy, ox sx - pw + kx dx]

With G groups, input maps and output maps are split into G equal blocks and block g of the output sees
block g of the input only. Per group, for the whole batch at once, y = W (O/G, C/G kh kw) @ col (C/G kh kw,
N outH outW); backward: ∂col = Wᵀ @ grad, then col2im; ∂W += grad @ colᵀ; ∂b += Σ_{n, oy, ox} grad.
"""

import math

import numpy

from minidl.backend import toDevice, xp
from minidl.errors import ModuleError
from minidl.nn.im2col import Window, col2im, im2col
from minidl.nn.linear import initWeights
from minidl.nn.module import Module, checkArray
from minidl.validation import checkSize
from minidl.variable import Variable


class Conv2D(Module):
    """``Conv2D(inmaps, outmaps, size, stride=1, pad=0, dilation=1, groups=1, useBias=True)``; W has shape
    (outmaps, inmaps / groups, kh, kw), b shape (outmaps,). size, stride, pad, dilation: an int or a pair."""

    cacheAttrs = ("inData", "data", "col")

    def __init__(self, inmaps, outmaps, size, stride=1, pad=0, dilation=1, groups=1, useBias=True,
                 initscheme="xavier", dtype=numpy.float32, name=None):
        super().__init__(name)
        self.window = Window(size, stride, pad, dilation)
        inmaps, outmaps = checkSize(inmaps, "Conv2D inmaps"), checkSize(outmaps, "Conv2D outmaps")
        groups = checkSize(groups, "Conv2D groups")
        if min(inmaps, outmaps, groups) < 1 or inmaps % groups or outmaps % groups:
            raise ModuleError(f"Conv2D maps must be positive multiples of groups, got inmaps={inmaps}, "
                              f"outmaps={outmaps}, groups={groups}")
        self.inmaps, self.outmaps, self.groups, self.useBias = inmaps, outmaps, groups, useBias
        kh, kw = self.window.size
        shape = (outmaps, inmaps // groups, kh, kw)
        fanIn, fanOut = inmaps // groups * kh * kw, outmaps // groups * kh * kw
        self.setVar("W", Variable(toDevice(initWeights(initscheme, fanIn, fanOut, shape), dtype=dtype), name="W"))
        if useBias:
            self.setVar("b", Variable(xp.zeros((outmaps,), dtype=dtype), name="b"))
        self.col = None

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=4, dtype=self.W.dtype)
        if data.shape[1] != self.inmaps:
            raise ModuleError(f"{self!r}: input must have {self.inmaps} maps, shape (batch, {self.inmaps}, height, "
                              f"width), got {data.shape}")
        self.window.outShape(*data.shape[2:], f"{self!r}")

    def _groupedWeights(self):
        return self.W.reshape(self.groups, self.outmaps // self.groups, -1)

    def _groupedCol(self):
        return self.col.reshape(self.groups, -1, math.prod(self.col.shape[3:]))  # (G, C/G kh kw, N outH outW)

    def updData(self, data):
        self.col = im2col(data, self.window)
        batch, outH, outW = self.col.shape[3:]
        out = xp.matmul(self._groupedWeights(), self._groupedCol()).reshape(self.outmaps, batch, outH, outW)
        if self.useBias:
            out += self.b.reshape(-1, 1, 1, 1)
        return xp.ascontiguousarray(out.transpose(1, 0, 2, 3))

    def _groupedGrad(self, grad):
        """grad (N, O, outH, outW) as (G, O/G, N outH outW), the layout of the matrix products."""
        return xp.ascontiguousarray(grad.transpose(1, 0, 2, 3)).reshape(self.groups, self.outmaps // self.groups, -1)

    def updGrad(self, grad):
        gradCol = xp.matmul(self._groupedWeights().transpose(0, 2, 1), self._groupedGrad(grad))
        return col2im(gradCol.reshape(self.col.shape), self.window, *self.inData.shape[2:])

    def accGradParams(self, grad):
        gradW = xp.matmul(self._groupedGrad(grad), self._groupedCol().transpose(0, 2, 1))
        self.vars["W"].grad += gradW.reshape(self.W.shape)
        if self.useBias:
            self.vars["b"].grad += grad.sum(axis=(0, 2, 3))
