"""AvgPool1D: y[n, c, t] = (1 / size) Σ_{k < size} x[n, c, t s - p + k] over (N, C, L) data, padding counted as
zeros (in ceil mode a window past the trailing pad divides by its taps inside the padded input, as PyTorch);
the gradient spreads grad / size over the window. AvgPool2D's computation on (N, C, 1, L)."""

from minidl.nn.avgpool2d import AvgPool2D
from minidl.nn.pool1d import Pool1D


class AvgPool1D(Pool1D, AvgPool2D):
    """``AvgPool1D(size=2, stride=2, pad=0, ceilMode=False)`` on (N, C, L) data."""
