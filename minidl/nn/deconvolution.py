"""Deconvolution: the base of Deconv2D and Deconv3D (transposed convolutions), whatever their rank: the window
and ``outpad``, the parameters, the output size and the input check. Per axis, for an input of ``side``,

    out = (side - 1) s - 2 p + d (k - 1) + outpad + 1.

A subclass names ``windowType`` (Window or Window3D), ``perAxis`` (pair or triple: an int or one per axis) and
``axes``, the names of the spatial axes for messages.
"""

import numpy

from minidl.errors import ModuleError
from minidl.nn.convolution import checkMaps, setupConvolution
from minidl.nn.module import Module


class Deconvolution(Module):
    """``(inmaps, outmaps, size, stride=1, pad=0, outpad=0, dilation=1, groups=1, useBias=True)``; W (inmaps,
    outmaps / groups, *window), b (outmaps,); ``outpad`` (< stride) adds rows at the far edge of each axis."""

    cacheAttrs = ("inData", "data", "gradCol")
    sharedInBackward = ("gradCol",)  # computed once per backward, for ∂x and the parameters

    def __init__(self, inmaps, outmaps, size, stride=1, pad=0, outpad=0, dilation=1, groups=1, useBias=True,
                 initscheme="xavier", dtype=numpy.float32, name=None):
        super().__init__(name)
        self.window = self.windowType(size, stride, pad, dilation)
        self.outpad = self.perAxis(outpad, "outpad")
        if any(o < 0 or o >= s for o, s in zip(self.outpad, self.window.stride)):
            raise ModuleError(f"{type(self).__name__}: outpad {self.outpad} must be >= 0 and smaller than the "
                              f"stride {self.window.stride}")
        setupConvolution(self, inmaps, outmaps, groups, useBias, initscheme, dtype, transposed=True)
        self.gradCol = None

    def outShape(self, *sizes):
        """The output's spatial sizes for an input of ``sizes``."""
        window = self.window
        return tuple((side - 1) * s - 2 * p + d * (k - 1) + o + 1 for side, s, p, d, k, o in zip(
            sizes, window.stride, window.pad, window.dilation, window.size, self.outpad))

    def checkData(self, data):
        checkMaps(self, data, self.axes)
        if min(self.outShape(*data.shape[2:])) < 1:
            raise ModuleError(f"{self!r}: input {data.shape[2:]} gives an empty output "
                              f"{self.outShape(*data.shape[2:])} (pad {self.window.pad} too large)")
