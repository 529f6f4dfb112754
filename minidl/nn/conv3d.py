"""Conv3D: a 3-D convolution (cross-correlation) of NCDHW data through vol2col and a matrix product.

    y[n, o, oz, oy, ox] = b[o] + Σ_{c in o's group, kz, ky, kx} W[o, c, kz, ky, kx]
                                   x[n, c, oz sd - pd + kz dd, oy sh - ph + ky dh, ox sw - pw + kx dw]

Per image n and group, y[n] = W (O/G, C/G kd kh kw) @ col[n] (C/G kd kh kw, outD outH outW), with col from
``vol2col`` (the 2-D im2col per depth plane, then the depth taps); backward, as Conv2D's: ∂col[n] = Wᵀ @ grad[n],
then col2vol; ∂W += Σ_n grad[n] @ col[n]ᵀ; ∂b += Σ_{n, oz, oy, ox} grad. W has PyTorch's Conv3d shape
(outmaps, inmaps / groups, kd, kh, kw), so weights carry over.
"""

import numpy

from minidl.backend import xp
from minidl.nn.conv2d import batchedProduct, weightProduct
from minidl.nn.convolution import checkMaps, groupedWeights, setupConvolution
from minidl.nn.gradsum import sumInto
from minidl.nn.module import Module
from minidl.nn.vol2col import Window3D, col2vol, vol2col


def grouped(array, groups, points):
    """(N, maps (taps), ...) as (N, G, maps/G (taps), points), the layout of the per-group products."""
    return xp.ascontiguousarray(array).reshape(array.shape[0], groups, -1, points)


class Conv3D(Module):
    """``Conv3D(inmaps, outmaps, size, stride=1, pad=0, dilation=1, groups=1, useBias=True)`` on (N, C, D, H, W);
    W (outmaps, inmaps / groups, kd, kh, kw), b (outmaps,); size, stride, pad, dilation: an int or a triple."""

    cacheAttrs = ("inData", "data", "col")

    def __init__(self, inmaps, outmaps, size, stride=1, pad=0, dilation=1, groups=1, useBias=True,
                 initscheme="xavier", dtype=numpy.float32, name=None):
        super().__init__(name)
        self.window = Window3D(size, stride, pad, dilation)
        setupConvolution(self, inmaps, outmaps, groups, useBias, initscheme, dtype)
        self.col = None

    def checkData(self, data):
        checkMaps(self, data, ("depth", "height", "width"))
        self.window.outShape(*data.shape[2:], f"{self!r}")

    def updData(self, data):
        batch = data.shape[0]
        outShape = self.window.outShape(*data.shape[2:], repr(self))
        self.col = grouped(vol2col(data, self.window), self.groups, int(numpy.prod(outShape)))
        out = batchedProduct(groupedWeights(self.W, self.groups), self.col).reshape(batch, self.outmaps, *outShape)
        if self.useBias:
            out += self.b.reshape(-1, 1, 1, 1)
        return out

    def updGrad(self, grad):
        batch, maps = self.inData.shape[:2]
        points = int(numpy.prod(grad.shape[2:]))
        weights = groupedWeights(self.W, self.groups).transpose(0, 2, 1)
        gradCol = batchedProduct(weights, grouped(grad, self.groups, points))
        return col2vol(gradCol.reshape(batch, maps, *self.window.size, *grad.shape[2:]), self.window,
                       *self.inData.shape[2:])

    def accGradParams(self, grad):
        points = int(numpy.prod(grad.shape[2:]))
        gradW = weightProduct(grouped(grad, self.groups, points), self.col)
        self.vars["W"].grad += gradW.reshape(self.W.shape)
        if self.useBias:
            sumInto(xp.ascontiguousarray(grad), self.vars["b"].grad, axis=(0, 2, 3, 4))  # one launch, summed in double
