"""How a 1-D layer on (N, C, L) data runs as its 2-D twin: with the length as the columns of (N, C, 1, L) on the
CPU, where a kernel element's loop over a row stays contiguous (AvgPool1D and MaxPool1D ran 5 to 10 times
faster so than as rows), and as the rows of (N, C, L, 1) on a GPU, where the 2-D window kernels take a row per
thread, so that a thread takes one output rather than walking the whole length. A layer picks its orientation
when it is made (``Line()``) and keeps it."""

from minidl.backend import isGpu


class Line:
    """The orientation of one 1-D layer: ``axis`` 0 (the length as rows, on a GPU) or 1 (as columns)."""

    def __init__(self):
        self.axis = 0 if isGpu else 1

    def pair(self, value, other):
        """The 2-D (rows, cols) pair of a 1-D window value, ``other`` on the unit axis."""
        return (value, other) if self.axis == 0 else (other, value)

    def of(self, pair):
        """The 1-D value of a 2-D (rows, cols) pair."""
        return pair[self.axis]

    def toPlane(self, data):
        """(N, C, L) data as the 2-D layer's (N, C, L, 1) or (N, C, 1, L) view."""
        return data[:, :, :, None] if self.axis == 0 else data[:, :, None, :]

    def toLine(self, data):
        """The 2-D layer's (N, C, L, 1) or (N, C, 1, L) output as (N, C, L)."""
        return data[:, :, :, 0] if self.axis == 0 else data[:, :, 0, :]

    def planeShape(self, length):
        return self.pair(length, 1)
