"""Scratch buffers for the CPU paths of kernels, kept between calls so a step makes no fresh temporaries.

One flat buffer per (dtype, slot) grows to the largest size asked for; callers get a view of the shape
they need. A view is valid until the next request for the same (dtype, slot).
"""

import numpy

_buffers = {}


def scratch(shape, dtype, slot=0):
    """A C-contiguous NumPy array of this shape and dtype; its contents are undefined."""
    dtype = numpy.dtype(dtype)
    size = int(numpy.prod(shape, dtype=numpy.int64))
    buffer = _buffers.get((dtype, slot))
    if buffer is None or buffer.size < size:
        buffer = numpy.empty(size, dtype=dtype)
        _buffers[(dtype, slot)] = buffer
    return buffer[:size].reshape(shape)
