"""The seed framework's ``gpuarray`` helpers, on whichever device the backend chose."""

import numpy

from minidl.backend.device import toDevice, xp


def to_gpu(array, dtype=None):  # noqa: N802 - the seed framework's name
    """Copy a host array to the device (a copy also on the CPU backend, so later host writes do not leak in)."""
    return toDevice(array, dtype=dtype)


def empty(shape, dtype=numpy.float32):
    """An uninitialised device array."""
    return xp.empty(shape, dtype=dtype)


def zeros(shape, dtype=numpy.float32):
    """A device array of zeros."""
    return xp.zeros(shape, dtype=dtype)
