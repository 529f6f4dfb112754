"""Deconv1D: the 1-D transposed convolution of (N, C, L) data, Deconv2D's computation on (N, C, 1, L), or on a
GPU on (N, C, L, 1) (``minidl.nn.line``).

    y[n, o, t] = b[o] + Σ_{c in o's group, k : (t + p - k d) = j s} W[c, o mod (outmaps / G), k] x[n, c, j],
    outL = (L - 1) s - 2 p + d (size - 1) + outpad + 1.

W has PyTorch's ConvTranspose1d shape (inmaps, outmaps / groups, size), so weights carry over.
"""

import numpy

from minidl.errors import ModuleError
from minidl.nn.convolution import checkMaps
from minidl.nn.deconv2d import Deconv2D
from minidl.nn.line import Line
from minidl.validation import checkInteger
from minidl.variable import Variable


class Deconv1D(Deconv2D):
    """``Deconv1D(inmaps, outmaps, size, stride=1, pad=0, outpad=0, dilation=1, groups=1, useBias=True)``;
    W (inmaps, outmaps / groups, size), b (outmaps,); size, stride, pad, outpad, dilation: ints."""

    def __init__(self, inmaps, outmaps, size, stride=1, pad=0, outpad=0, dilation=1, groups=1, useBias=True,
                 initscheme="xavier", dtype=numpy.float32, name=None):
        size, stride, pad, outpad, dilation = (checkInteger(value, f"Deconv1D {what}") for value, what in (
            (size, "size"), (stride, "stride"), (pad, "pad"), (outpad, "outpad"), (dilation, "dilation")))
        line = Line()
        super().__init__(inmaps, outmaps, line.pair(size, 1), line.pair(stride, 1), line.pair(pad, 0),
                         line.pair(outpad, 0), line.pair(dilation, 1), groups, useBias, initscheme, dtype, name)
        self.line = line
        self.setVar("W", Variable(self.W.reshape(inmaps, outmaps // groups, size), name="W"))

    def checkData(self, data):
        checkMaps(self, data, ("length",))
        if self.line.of(self.outShape(*self.line.planeShape(data.shape[2]))) < 1:
            raise ModuleError(f"{self!r}: input length {data.shape[2]} gives an empty output (pad "
                              f"{self.line.of(self.window.pad)} too large)")

    def updData(self, data):
        return self.line.toLine(super().updData(self.line.toPlane(data)))

    def updGrad(self, grad):
        return super().updGrad(self.line.toPlane(grad))  # reshaped to the input's (N, C, L)

    def accGradParams(self, grad):
        self._accGradParams(self.line.toPlane(grad), self.line.toPlane(self.inData))
