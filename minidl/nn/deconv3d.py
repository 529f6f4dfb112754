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

from minidl.backend import xp
from minidl.nn.conv2d import batchedProduct, weightProduct
from minidl.nn.conv3d import grouped
from minidl.nn.convolution import groupedWeights
from minidl.nn.deconvolution import Deconvolution
from minidl.nn.gradsum import sumInto
from minidl.nn.vol2col import Window3D, col2vol, triple, vol2col


class Deconv3D(Deconvolution):
    """``Deconv3D(inmaps, outmaps, size, stride=1, pad=0, outpad=0, dilation=1, groups=1, useBias=True)`` on
    (N, C, D, H, W); W (inmaps, outmaps / groups, kd, kh, kw), b (outmaps,); size, stride, pad, outpad, dilation:
    an int or a triple."""

    windowType = Window3D
    perAxis = staticmethod(triple)
    axes = ("depth", "height", "width")

    def _points(self):
        return int(numpy.prod(self.inData.shape[2:]))

    def updData(self, data):
        weights = groupedWeights(self.W, self.groups).transpose(0, 2, 1)
        col = batchedProduct(weights, grouped(data, self.groups, self._points()))
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
        return batchedProduct(groupedWeights(self.W, self.groups), self._gradCol(grad)).reshape(self.inData.shape)

    def accGradParams(self, grad):
        gradW = weightProduct(grouped(self.inData, self.groups, self._points()), self._gradCol(grad))
        self.vars["W"].grad += gradW.reshape(self.W.shape)
        if self.useBias:
            sumInto(xp.ascontiguousarray(grad), self.vars["b"].grad, axis=(0, 2, 3, 4))  # one launch, summed in double
