"""Timing helpers shared by the benchmark scripts: median wall time of a device operation, and the
machine's copy bandwidth measured in the same run."""

import time

import numpy

from minidl import backend


def medianSeconds(operation, repeats=20, warmup=3, before=None):
    """Median wall time of ``operation()`` in seconds, the device synchronised around each call; ``before()``,
    if given, runs untimed ahead of each call (to restore inputs the operation rewrites)."""
    for _ in range(warmup):
        operation()
    backend.synchronize()
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
            backend.synchronize()
        start = time.perf_counter()
        operation()
        backend.synchronize()
        times.append(time.perf_counter() - start)
    return float(numpy.median(times))


def copyBandwidth(size):
    """GB/s of copying ``size`` float32 values on the backend's device (bytes read + bytes written)."""
    source = backend.xp.ones(size, dtype=numpy.float32)
    target = backend.xp.empty_like(source)
    seconds = medianSeconds(lambda: backend.xp.copyto(target, source))
    return 2 * 4 * size / seconds / 1e9


def machine():
    """One line naming the device the numbers were taken on."""
    import platform

    if backend.isGpu:
        properties = backend.xp.cuda.runtime.getDeviceProperties(0)
        return f"GPU {properties['name'].decode()} (CuPy {backend.xp.__version__})"
    cores = len(__import__("os").sched_getaffinity(0))
    return f"CPU {platform.processor() or platform.machine()}, {cores} cores (NumPy {numpy.__version__})"
