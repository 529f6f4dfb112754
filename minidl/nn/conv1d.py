"""Conv1D: a 1-D convolution (cross-correlation) of (N, C, L) data, Conv2D's computation on (N, C, 1, L).

    y[n, o, t] = b[o] + Σ_{c in o's group, k} W[o, c, k] x[n, c, t s - p + k d]

W has PyTorch's Conv1d shape (outmaps, inmaps / groups, size), so weights carry over.
"""

import numpy

from minidl.nn.conv2d import Conv2D
from minidl.nn.convolution import checkMaps
from minidl.validation import checkInteger
from minidl.variable import Variable


class Conv1D(Conv2D):
    """``Conv1D(inmaps, outmaps, size, stride=1, pad=0, dilation=1, groups=1, useBias=True)``; W (outmaps,
    inmaps / groups, size), b (outmaps,); size, stride, pad, dilation: ints."""

    def __init__(self, inmaps, outmaps, size, stride=1, pad=0, dilation=1, groups=1, useBias=True,
                 initscheme="xavier", dtype=numpy.float32, name=None):
        size, stride, pad, dilation = (checkInteger(value, f"Conv1D {what}") for value, what in
                                       ((size, "size"), (stride, "stride"), (pad, "pad"), (dilation, "dilation")))
        super().__init__(inmaps, outmaps, (1, size), (1, stride), (0, pad), (1, dilation), groups, useBias,
                         initscheme, dtype, name)
        self.setVar("W", Variable(self.W.reshape(outmaps, inmaps // groups, size), name="W"))

    def checkData(self, data):
        checkMaps(self, data, ("length",))
        self.window.outShape(1, data.shape[2], f"{self!r}")

    def updData(self, data):
        return self._forward(data[:, :, None, :])[:, :, 0, :]

    def updGrad(self, grad):
        return self._gradInput(grad[:, :, None, :], self.inData[:, :, None, :].shape)[:, :, 0, :]

    def accGradParams(self, grad):
        self._accGradParams(grad[:, :, None, :], self.inData[:, :, None, :])
