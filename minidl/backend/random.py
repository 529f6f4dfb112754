"""The backend's random state: one NumPy generator for host-side draws (initialisation, shuffling), and
CuPy's generator for device-side draws. ``seed(n)`` resets both, so runs are reproducible, and parameter
initialisation draws on the host so that the same seed gives the same network on the CPU and on the GPU."""

import numpy

from minidl.backend.device import cupy

_generator = numpy.random.default_rng()


def seed(value):
    """Reset every random generator minidl uses from one integer."""
    global _generator
    _generator = numpy.random.default_rng(value)
    if cupy is not None:
        cupy.random.seed(value)


def generator():
    """The host-side numpy.random.Generator; draw from it rather than from numpy's global state."""
    return _generator
