"""Pool1D: what turns a 2-D pool (MaxPool2D, AvgPool2D) into its 1-D twin on (N, C, L) data: the same computation
on (N, C, 1, L) with a (1, size) window, stride (1, stride) and pad (0, pad), or on a GPU on (N, C, L, 1) with the
window turned likewise (``minidl.nn.line``)."""


from minidl.nn.line import Line
from minidl.validation import checkInteger


class Pool1D:
    """Put before the 2-D pool among the bases: ``class MaxPool1D(Pool1D, MaxPool2D)``. ``size``, ``stride``,
    ``pad``: ints."""

    dataDims = 3

    def __init__(self, size=2, stride=2, pad=0, ceilMode=False, name=None):
        kind = type(self).__name__
        size, stride, pad = (checkInteger(value, f"{kind} {what}") for value, what in
                             ((size, "size"), (stride, "stride"), (pad, "pad")))
        self.line = Line()
        super().__init__(self.line.pair(size, 1), self.line.pair(stride, 1), self.line.pair(pad, 0), ceilMode, name)

    def planeShape(self, shape):
        return self.line.planeShape(shape[2])

    def updData(self, data):
        return self.line.toLine(super().updData(self.line.toPlane(data)))

    def updGrad(self, grad):
        return self.line.toLine(super().updGrad(self.line.toPlane(grad)))
