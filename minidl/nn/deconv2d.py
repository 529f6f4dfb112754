"""Deconv2D: the transposed convolution, the adjoint (input gradient) of a Conv2D from its output maps back to
its input maps; decoders and segmentation heads use it to upsample.

With W of PyTorch's ConvTranspose2d shape (inmaps, outmaps / G, kh, kw) read as the weights of a Conv2D from
outmaps to inmaps maps, Deconv2D's output is that convolution's input gradient for x: per image and group,
col[n] = Wᵀ (outmaps/G kh kw, inmaps/G) @ x[n] (inmaps/G, H W), then col2im onto

    outH = (H - 1) sy - 2 ph + dy (kh - 1) + outpad_y + 1   (outW likewise),

plus b. Backward is that convolution's forward: ∂x[n] = W @ im2col(grad)[n]; ∂W += Σ_n x[n] @ im2col(grad)[n]ᵀ;
∂b += Σ_{n, y, x} grad. ``outpad`` (< stride; PyTorch also allows < dilation) adds rows and columns at the far
edge, so that every output size a strided convolution maps to the same input size can be reached.
"""


from minidl.backend import xp
from minidl.nn.conv2d import batchedProduct, weightProduct
from minidl.nn.convolution import groupedWeights
from minidl.nn.deconvolution import Deconvolution
from minidl.nn.gradsum import sumInto
from minidl.nn.im2col import Window, col2im, im2col, pair


class Deconv2D(Deconvolution):
    """``Deconv2D(inmaps, outmaps, size, stride=1, pad=0, outpad=0, dilation=1, groups=1, useBias=True)``;
    W (inmaps, outmaps / groups, kh, kw), b (outmaps,); size, stride, pad, outpad, dilation: an int or a pair."""

    windowType = Window
    perAxis = staticmethod(pair)
    axes = ("height", "width")

    def _grouped(self, array):
        """(N, maps, h, w) as (N, G, maps/G (kh kw), h w)."""
        return xp.ascontiguousarray(array).reshape(array.shape[0], self.groups, -1, array.shape[-2] * array.shape[-1])

    def updData(self, data):
        batch, _, height, width = data.shape
        col = batchedProduct(groupedWeights(self.W, self.groups).transpose(0, 2, 1), self._grouped(data))
        col = col.reshape(batch, self.outmaps, *self.window.size, height, width)
        out = col2im(col, self.window, *self.outShape(height, width))
        if self.useBias:
            out += self.b.reshape(-1, 1, 1)
        return out

    def _gradCol(self, grad):
        if self.gradCol is None:
            self.gradCol = self._grouped(im2col(grad, self.window))  # (N, G, outmaps/G kh kw, H W)
        return self.gradCol

    def updGrad(self, grad):
        return batchedProduct(groupedWeights(self.W, self.groups), self._gradCol(grad)).reshape(self.inData.shape)

    def accGradParams(self, grad):
        self._accGradParams(grad, self.inData)

    def _accGradParams(self, grad, data):
        """∂W += ..., ∂b += Σ grad, for grad (N, outmaps, outH, outW) at data (N, inmaps, H, W)."""
        gradW = weightProduct(self._grouped(data), self._gradCol(grad))
        self.vars["W"].grad += gradW.reshape(self.W.shape)
        if self.useBias:
            sumInto(xp.ascontiguousarray(grad), self.vars["b"].grad, axis=(0, 2, 3))  # one launch, summed in double
