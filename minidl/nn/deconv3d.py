"""Deconv3D: the 3-D transposed convolution, the adjoint (input gradient) of a Conv3D from its output maps back
to its input maps, as Deconv2D is of Conv2D.

With W of PyTorch's ConvTranspose3d shape (inmaps, outmaps / G, kd, kh, kw) read as the weights of a Conv3D from
outmaps to inmaps maps: per image and group, col[n] = Wᵀ (outmaps/G kd kh kw, inmaps/G) @ x[n] (inmaps/G, D H W),
then col2vol onto

    outD = (D - 1) sd - 2 pd + dd (kd - 1) + outpad_d + 1   (outH, outW likewise),

plus b. Backward is that convolution's forward: ∂x[n] = W @ vol2col(grad)[n]; ∂W += Σ_n x[n] @ vol2col(grad)[n]ᵀ;
∂b += Σ_{n, z, y, x} grad. ``outpad`` (< stride) adds planes, rows and columns at the far edge.
"""

import numpy

from minidl.backend import toDevice, xp
from minidl.errors import ModuleError
from minidl.nn.conv2d import batchedProduct, weightProduct
from minidl.nn.conv3d import checkGroups, grouped
from minidl.nn.linear import initWeights
from minidl.nn.module import Module, checkArray
from minidl.nn.vol2col import Window3D, col2vol, triple, vol2col
from minidl.variable import Variable


class Deconv3D(Module):
    """``Deconv3D(inmaps, outmaps, size, stride=1, pad=0, outpad=0, dilation=1, groups=1, useBias=True)`` on
    (N, C, D, H, W); W (inmaps, outmaps / groups, kd, kh, kw), b (outmaps,); size, stride, pad, outpad, dilation:
    an int or a triple."""

    cacheAttrs = ("inData", "data", "gradCol")
    sharedInBackward = ("gradCol",)  # computed once per backward, for ∂x and the parameters

    def __init__(self, inmaps, outmaps, size, stride=1, pad=0, outpad=0, dilation=1, groups=1, useBias=True,
                 initscheme="xavier", dtype=numpy.float32, name=None):
        super().__init__(name)
        self.window = Window3D(size, stride, pad, dilation)
        self.outpad = triple(outpad, "outpad")
        self.inmaps, self.outmaps, self.groups = checkGroups("Deconv3D", inmaps, outmaps, groups)
        if any(o < 0 or o >= s for o, s in zip(self.outpad, self.window.stride)):
            raise ModuleError(f"Deconv3D: outpad {self.outpad} must be >= 0 and smaller than the stride "
                              f"{self.window.stride}")
        self.useBias = useBias
        taps = int(numpy.prod(self.window.size))
        shape = (self.inmaps, self.outmaps // self.groups, *self.window.size)
        fanIn, fanOut = self.outmaps // self.groups * taps, self.inmaps // self.groups * taps
        self.setVar("W", Variable(toDevice(initWeights(initscheme, fanIn, fanOut, shape), dtype=dtype), name="W"))
        if useBias:
            self.setVar("b", Variable(xp.zeros((self.outmaps,), dtype=dtype), name="b"))
        self.gradCol = None

    def outShape(self, depth, height, width):
        """(outD, outH, outW) for an input of (depth, height, width)."""
        window = self.window
        return tuple((side - 1) * s - 2 * p + d * (k - 1) + o + 1 for side, s, p, d, k, o in zip(
            (depth, height, width), window.stride, window.pad, window.dilation, window.size, self.outpad))

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=5, dtype=self.W.dtype)
        if data.shape[1] != self.inmaps:
            raise ModuleError(f"{self!r}: input must have {self.inmaps} maps, shape (batch, {self.inmaps}, depth, "
                              f"height, width), got {data.shape}")
        if min(self.outShape(*data.shape[2:])) < 1:
            raise ModuleError(f"{self!r}: input {data.shape[2:]} gives an empty output {self.outShape(*data.shape[2:])}"
                              f" (pad {self.window.pad} too large)")

    def _groupedWeights(self):
        return self.W.reshape(self.groups, self.inmaps // self.groups, -1)  # (G, inmaps/G, outmaps/G kd kh kw)

    def _points(self):
        return int(numpy.prod(self.inData.shape[2:]))

    def updData(self, data):
        col = batchedProduct(self._groupedWeights().transpose(0, 2, 1), grouped(data, self.groups, self._points()))
        col = col.reshape(data.shape[0], self.outmaps, *self.window.size, *data.shape[2:])
        out = col2vol(col, self.window, *self.outShape(*data.shape[2:]))
        if self.useBias:
            out += self.b.reshape(-1, 1, 1, 1)
        return out

    def _gradCol(self, grad):
        if self.gradCol is None:  # (N, G, outmaps/G kd kh kw, D H W)
            self.gradCol = grouped(vol2col(grad, self.window), self.groups, self._points())
        return self.gradCol

    def updGrad(self, grad):
        return batchedProduct(self._groupedWeights(), self._gradCol(grad)).reshape(self.inData.shape)

    def accGradParams(self, grad):
        gradW = weightProduct(grouped(self.inData, self.groups, self._points()), self._gradCol(grad))
        self.vars["W"].grad += gradW.reshape(self.W.shape)
        if self.useBias:
            self.vars["b"].grad += grad.sum(axis=(0, 2, 3, 4))
