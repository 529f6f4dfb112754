"""Device detection, done once per process at import: CuPy when its whole stack works, else NumPy.

Choosing CuPy means proving it: a CUDA device answers, a tiny ElementwiseKernel compiles (NVRTC and the CUDA
headers) and runs, and a small matrix product runs (cuBLAS). When CuPy is installed but a step fails, minidl
runs on NumPy and says why in ONE line on stderr, with the command that installs the missing piece; without
CuPy it runs on NumPy silently. ``MINIDL_BACKEND=numpy`` or ``MINIDL_BACKEND=cupy`` forces one; forcing cupy
where the probe fails is a BackendError with the same reason, never a silent fallback. ``MINIDL_BACKEND=simulated``
runs the GPU path on the simulated device (``minidl.backend.simulated``: CuPy's semantics on the CPU, counted), for
tests and profiles. This is the only file of minidl that imports cupy.
"""

import os
import sys
import warnings

import numpy

from minidl.backend.hostmemory import keepFreedMemory
from minidl.backend.namespace import ArrayNamespace
from minidl.errors import BackendError

INSTALL_CUPY = "pip install 'cupy-cuda12x[ctk]' (or cupy-cuda13x[ctk] for a CUDA 13 driver: see nvidia-smi)"
NOT_INSTALLED = "CuPy is not installed: " + INSTALL_CUPY
NO_DRIVER = "no CUDA device answers (no NVIDIA driver: libcuda does not load): minidl's GPU path needs an NVIDIA GPU"
NO_DEVICE = "no CUDA device answers (the NVIDIA driver sees none): minidl's GPU path needs an NVIDIA GPU"


def _firstLine(error):
    text = f"{type(error).__name__}: {error}".strip().splitlines()[0]
    return text if len(text) <= 160 else text[:157] + "..."


def _installCommand(cupy):
    """The pip command that brings CuPy's CUDA libraries for the CUDA major version this CuPy was built for."""
    try:
        major = cupy.cuda.runtime.runtimeGetVersion() // 1000
    except Exception:  # a CuPy too broken to say its own version: name both
        return INSTALL_CUPY
    return f"pip install 'cupy-cuda{major}x[ctk]'"


def probeCupy(cupy):
    """None when CuPy's stack works on this machine, else the reason: what is missing and how to install it.

    Three steps, each needing more of the stack: a device answers (driver), an elementwise kernel compiles
    and gives the right values (NVRTC, the CUDA headers), a matrix product gives the right values (cuBLAS).
    It runs where the NVIDIA driver's library loads (_loadCupy), so cudaErrorInsufficientDriver here means a
    driver older than CuPy's CUDA runtime. No device at all is NO_DEVICE, which ``choose`` does not report."""
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDARuntimeError when no device answers or the driver is too old
        if "cudaErrorNoDevice" in str(error):
            return NO_DEVICE
        if "cudaErrorInsufficientDriver" in str(error):
            return (f"the NVIDIA driver is older than CuPy's CUDA runtime ({_firstLine(error)}): update the driver, "
                    f"or install the CuPy of the CUDA version nvidia-smi shows: {INSTALL_CUPY}")
        return f"no CUDA device answers ({_firstLine(error)}): minidl's GPU path needs an NVIDIA GPU and its driver"
    if count == 0:
        return NO_DEVICE
    try:
        kernel = cupy.ElementwiseKernel("T x", "T y", "y = x + 1", "minidl_probe")
        values = kernel(cupy.zeros(4, dtype=numpy.float32)).get().tolist()
    except Exception as error:  # DynamicLibNotFoundError (libnvrtc), CompileException (headers)
        return (f"CuPy cannot compile a kernel ({_firstLine(error)}): NVRTC or the CUDA headers are missing; "
                f"install them with: {_installCommand(cupy)}")
    if values != [1.0] * 4:
        return f"a compiled probe kernel gave {values} instead of [1.0, 1.0, 1.0, 1.0]: the CUDA stack is broken"
    try:
        square = cupy.ones((2, 2), dtype=numpy.float32)
        values = (square @ square).get().tolist()
    except Exception as error:  # ImportError: libcublas.so.12
        return (f"CuPy cannot multiply matrices ({_firstLine(error)}): cuBLAS is missing; "
                f"install it with: {_installCommand(cupy)}")
    if values != [[2.0, 2.0], [2.0, 2.0]]:
        return f"a probe matrix product gave {values} instead of [[2.0, 2.0], [2.0, 2.0]]: the CUDA stack is broken"
    return None


def _loadCupy(driverLibrary="nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"):
    """(cupy, None) when CuPy imports and its probe passes, else (None, the reason). Where the NVIDIA driver's
    library does not load, CuPy could not run: it is not even imported (its import costs about a second) and the
    reason is NO_DRIVER."""
    import ctypes

    try:
        ctypes.CDLL(driverLibrary)
    except OSError:
        return None, NO_DRIVER
    try:
        with warnings.catch_warnings():  # CuPy warns at import about libraries the probe checks itself
            warnings.simplefilter("ignore")
            import cupy
    except ImportError as error:
        if getattr(error, "name", None) == "cupy":
            return None, NOT_INSTALLED
        return None, f"CuPy cannot be imported ({_firstLine(error)}): {INSTALL_CUPY}"
    except Exception as error:  # e.g. two CuPy packages installed side by side
        return None, f"CuPy cannot be imported ({_firstLine(error)}): {INSTALL_CUPY}"
    try:
        reason = probeCupy(cupy)
    except Exception as error:  # never let a CUDA error reach a user of the CPU path
        reason = f"the CuPy probe failed ({_firstLine(error)})"
    return (cupy, None) if reason is None else (None, reason)


def choose(forced, loadCupy=_loadCupy, stderr=None):
    """(cupy or None, the reason CuPy is not used or None) for ``MINIDL_BACKEND=forced`` ('' for automatic)."""
    forced = forced.strip().lower()
    if forced not in ("", "numpy", "cupy", "simulated"):
        raise BackendError(f"MINIDL_BACKEND must be 'numpy', 'cupy' or 'simulated', got {forced!r}")
    if forced == "numpy":
        return None, None
    if forced == "simulated":
        from minidl.backend import simulated

        return simulated.cupy, None
    cupy, reason = loadCupy()
    if cupy is None and forced == "cupy":
        raise BackendError(f"the GPU was asked for (MINIDL_BACKEND=cupy or --device gpu), but {reason}")
    if cupy is None and reason not in (NOT_INSTALLED, NO_DRIVER, NO_DEVICE):  # a CPU-only machine is no problem
        print(f"minidl: running on the CPU: {reason}", file=stderr or sys.stderr, flush=True)
    return cupy, reason


_forced = os.environ.get("MINIDL_BACKEND", "").strip().lower()
cupy, _reason = choose(_forced)
simulated = _forced == "simulated"
_probed = _forced not in ("numpy", "simulated")


def gpuProblem():
    """None when CuPy's stack works on a device here, else the reason (what is missing, the command that
    installs it). Probed once per process: at import, or at the first call when MINIDL_BACKEND=numpy."""
    global _reason, _probed
    if not _probed:
        _reason, _probed = _loadCupy()[1], True
    return _reason


xp = ArrayNamespace(numpy if cupy is None else cupy)
name = "numpy" if cupy is None else "simulated" if simulated else "cupy"
isGpu = cupy is not None  # the simulated device takes every GPU branch
if cupy is None or simulated:  # arrays in host memory: keep what is freed for the next ones (hostmemory)
    keepFreedMemory()


def valuesPerElement(length):
    """How many consecutive items of a run of ``length`` (the values of a row, the rows of a plane) one element of
    a kernel covers: the whole run on the CPU, where one thread's loop over it is contiguous (its index decoded
    once, the loop vectorized); one on a GPU, a thread each."""
    return 1 if isGpu else length


def cupyxModule():
    """CuPy's companion namespace (page-locked arrays, scatter_add) of the device in use."""
    if simulated:
        from minidl.backend.simulated import cupyx
    else:
        import cupyx
    return cupyx


def cublasBindings():
    """CuPy's cuBLAS bindings (``cupy_backends.cuda.libs.cublas``), or the simulated device's."""
    if simulated:
        from minidl.backend.simulated import cublas
    else:
        from cupy_backends.cuda.libs import cublas
    return cublas


def isDeviceArray(array):
    """True for a CuPy array (on the GPU or the simulated device); False for anything else, NumPy arrays included."""
    return cupy is not None and isinstance(array, cupy.ndarray)


def isArray(value):
    """A NumPy or device array (anything else a kernel takes is a scalar)."""
    return isinstance(value, numpy.ndarray) or isDeviceArray(value)


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
        cupyxModule().scatter_add(target, indices, values)
    else:
        numpy.add.at(target, indices, values)


def synchronize():
    """Wait until every queued device operation has finished (nothing to wait for on the CPU)."""
    if cupy is not None:
        cupy.cuda.get_current_stream().synchronize()
