"""``cupyx`` of the simulated device: page-locked host arrays and ``scatter_add`` (atomic adds on a GPU)."""

import numpy

from minidl.backend.simulated.ndarray import hostOf, launch
from minidl.backend.simulated.pinned import pinnedEmpty


def empty_pinned(shape, dtype=float, order="C"):  # noqa: N802 - CuPy's name
    """An uninitialised NumPy array in page-locked host memory."""
    return pinnedEmpty(shape, dtype)


def scatter_add(a, slices, value):  # noqa: N802 - CuPy's name
    """a[slices] += value with every repeated index added: atomic adds on a GPU, so the order of the additions,
    and the rounding of float sums, may differ between runs there."""
    target, where, values = hostOf(a), hostOf(slices), hostOf(value)
    numpy.add.at(target, where, values)
    launch("scatter_add (atomic)", numpy.asarray(values), target, where, values)
