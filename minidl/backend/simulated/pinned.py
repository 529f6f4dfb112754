"""Page-locked host memory of the simulated device (``cupyx.empty_pinned``): the buffers are remembered while they
live, so a copy from one is counted as pinned rather than pageable."""

import weakref

import numpy

_pinned = {}  # address -> size of the page-locked buffers alive


def isPinned(host):
    """True when the NumPy array ``host`` lies in a page-locked array of ``cupyx.empty_pinned``."""
    address = host.__array_interface__["data"][0]
    return any(start <= address < start + size for start, size in _pinned.items())


def pinnedEmpty(shape, dtype):
    """A NumPy array in a page-locked buffer (``cupyx.empty_pinned``), remembered while it lives."""
    host = numpy.empty(shape, dtype=dtype)
    address = host.__array_interface__["data"][0]
    _pinned[address] = max(host.nbytes, 1)
    weakref.finalize(host, _pinned.pop, address, None)
    return host
