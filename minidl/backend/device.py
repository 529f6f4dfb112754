"""Device detection, done once at import: CuPy when a CUDA device answers, else NumPy.

``MINIDL_BACKEND=numpy`` or ``MINIDL_BACKEND=cupy`` forces one; forcing cupy where no device answers is
an error, never a silent fallback. This is the only file of minidl that imports cupy.
"""

import os

import numpy

from minidl.errors import BackendError


def _importCupy():
    """Return (cupy, None) when a CUDA device answers, else (None, the reason it does not)."""
    try:
        import cupy
    except ImportError as error:
        return None, f"cupy cannot be imported ({error})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # cupy raises CUDARuntimeError when no driver or device answers
        return None, f"no CUDA device answers ({error})"
    if count == 0:
        return None, "no CUDA device answers (device count is 0)"
    return cupy, None


def _detect():
    forced = os.environ.get("MINIDL_BACKEND", "").strip().lower()
    if forced not in ("", "numpy", "cupy"):
        raise BackendError(f"MINIDL_BACKEND must be 'numpy' or 'cupy', got {forced!r}")
    if forced == "numpy":
        return None
    cupy, reason = _importCupy()
    if cupy is None and forced == "cupy":
        raise BackendError(f"MINIDL_BACKEND=cupy, but {reason}")
    return cupy


def gpuProblem():
    """None when cupy imports and a CUDA device answers, else the reason (for error messages)."""
    return _importCupy()[1]


cupy = _detect()
xp = numpy if cupy is None else cupy
name = "numpy" if cupy is None else "cupy"
isGpu = cupy is not None


def isDeviceArray(array):
    """True for a CuPy array (on the GPU); False for anything else, NumPy arrays included."""
    return cupy is not None and isinstance(array, cupy.ndarray)


def toDevice(array, dtype=None):
    """Copy a host (or device) array to the backend's device; dtype converts on the way."""
    return xp.array(array, dtype=dtype, copy=True)


def toHost(array):
    """Return a NumPy array holding the values of a device or host array (a copy for device arrays)."""
    if isDeviceArray(array):
        return array.get()
    return numpy.asarray(array)


def scatterAdd(target, indices, values):
    """target[indices] += values, adding every value even where an index repeats (numpy.add.at on the CPU,
    cupyx.scatter_add on the GPU, which adds atomically)."""
    if isDeviceArray(target):
        import cupyx

        cupyx.scatter_add(target, indices, values)
    else:
        numpy.add.at(target, indices, values)


def synchronize():
    """Wait until every queued device operation has finished (nothing to wait for on the CPU)."""
    if cupy is not None:
        cupy.cuda.get_current_stream().synchronize()
