"""Sums over a sliding window along one axis, zero beyond the ends: the local sums of the LRN family
(CrossMapLRN over maps, MapLRN, LCN and SubtractMean over rows and columns).

    windowSum(a, axis, before, after)[..., i, ...] = Σ_{j = i - before}^{i + after} a[..., j, ...]   (j in range)

The transposed window (``before`` and ``after`` swapped) sums, at j, every i whose window holds j: it is the
backward pass of a window sum. One slice add per offset (before + after of them), so the sums are as exact as
the additions in the array's dtype, with no running-sum cancellation.
"""


def _slices(axis, ndim, start, stop):
    index = [slice(None)] * ndim
    index[axis] = slice(start, stop)
    return tuple(index)


def windowSum(a, axis, before, after):
    """A new array: the sums of ``a`` over the window [i - before, i + after] along ``axis``."""
    out = a.copy()
    length = a.shape[axis]
    for k in range(1, min(before, length - 1) + 1):
        out[_slices(axis, a.ndim, k, length)] += a[_slices(axis, a.ndim, 0, length - k)]
    for k in range(1, min(after, length - 1) + 1):
        out[_slices(axis, a.ndim, 0, length - k)] += a[_slices(axis, a.ndim, k, length)]
    return out


def planeWindowSum(a, before, after):
    """``windowSum`` over the last two axes (rows, then columns) with one window [before, after] for both."""
    return windowSum(windowSum(a, a.ndim - 2, before, after), a.ndim - 1, before, after)
