"""Scratch buffers for the CPU paths of kernels, kept between calls so a step makes no fresh temporaries.

One flat buffer per (dtype, key) grows to the largest size asked for; callers get a view of the shape
they need. The key names what the buffer holds ("step", "mask", "im2col"): a view is valid until the next
request for the same (dtype, key), so buffers in use at the same time need keys of their own.
"""

import numpy

_buffers = {}


def scratch(shape, dtype, key):
    """A C-contiguous NumPy array of this shape and dtype, kept under the name ``key``; its contents are
    undefined."""
    dtype = numpy.dtype(dtype)
    size = int(numpy.prod(shape, dtype=numpy.int64))
    buffer = _buffers.get((dtype, key))
    if buffer is None or buffer.size < size:
        buffer = numpy.empty(size, dtype=dtype)
        _buffers[(dtype, key)] = buffer
    return buffer[:size].reshape(shape)
