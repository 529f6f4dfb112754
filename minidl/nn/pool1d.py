"""Pool1D: what turns a 2-D pool (MaxPool2D, AvgPool2D) into its 1-D twin on (N, C, L) data: the same
computation on (N, C, L, 1), with a (size, 1) window, stride (stride, 1) and pad (pad, 0). The length is the
rows (not the columns) so that on a GPU, where the 2-D kernels take a row per thread, a thread takes one output
rather than walking the whole length."""

import numpy

from minidl.errors import ModuleError
from minidl.nn.module import checkArray
from minidl.validation import checkInteger


class Pool1D:
    """Put before the 2-D pool among the bases: ``class MaxPool1D(Pool1D, MaxPool2D)``. ``size``, ``stride``,
    ``pad``: ints."""

    def __init__(self, size=2, stride=2, pad=0, ceilMode=False, name=None):
        kind = type(self).__name__
        size, stride, pad = (checkInteger(value, f"{kind} {what}") for value, what in
                             ((size, "size"), (stride, "stride"), (pad, "pad")))
        super().__init__((size, 1), (stride, 1), (pad, 0), ceilMode, name)

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=3)
        if not numpy.issubdtype(data.dtype, numpy.floating):
            raise ModuleError(f"{self!r}: input must have a floating dtype, got {data.dtype}")
        self.window.outShape(data.shape[2], 1, f"{self!r}")

    def planeShape(self):
        return (self.inData.shape[2], 1)

    def updData(self, data):
        return super().updData(data[:, :, :, None])[:, :, :, 0]

    def updGrad(self, grad):
        return super().updGrad(grad[:, :, :, None])[:, :, :, 0]
