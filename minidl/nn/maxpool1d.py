"""MaxPool1D: y[n, c, t] = max_{k < size} x[n, c, t s - p + k] over (N, C, L) data (padding never wins, a NaN in
the window wins); the gradient goes to the window's first maximal tap. MaxPool2D's kernels on (N, C, 1, L)."""

from minidl.nn.maxpool2d import MaxPool2D
from minidl.nn.pool1d import Pool1D


class MaxPool1D(Pool1D, MaxPool2D):
    """``MaxPool1D(size=2, stride=2, pad=0, ceilMode=False)`` on (N, C, L) data; ceil mode as PyTorch's."""
