"""Timing helpers shared by the benchmark scripts: median wall time of a device operation, and the
machine's copy bandwidth measured in the same run."""

import time

import numpy

from minidl import backend

copyKer = backend.Elementwise("bench_copy", "T x", "T y", "y = x", lambda x, y: numpy.copyto(y, x))


def medianSeconds(operation, repeats=20, warmup=3, before=None, clock=time.perf_counter):
    """Median wall time (or another ``clock``'s, e.g. time.process_time) of ``operation()`` in seconds, the
    device synchronised around each call; ``before()``, if given, runs untimed ahead of each call (to restore
    inputs the operation rewrites)."""
    for _ in range(warmup):
        operation()
    backend.synchronize()
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
            backend.synchronize()
        start = clock()
        operation()
        backend.synchronize()
        times.append(clock() - start)
    return float(numpy.median(times))


def copyBandwidths(size):
    """GB/s of copying ``size`` float32 values (bytes read + bytes written) on the backend's device: the array
    module's copyto, and on the CPU also the compiled OpenMP copy kernel, which uses every core."""
    source = backend.xp.ones(size, dtype=numpy.float32)
    target = backend.xp.empty_like(source)
    rates = {f"{backend.xp.__name__}.copyto": 8 * size / medianSeconds(lambda: backend.xp.copyto(target, source)) / 1e9}
    if not backend.isGpu:
        rates["compiled OpenMP copy"] = 8 * size / medianSeconds(lambda: copyKer.callCompiled(source, target)) / 1e9
    return rates


def copyBandwidth(size):
    """The machine's copy bandwidth in GB/s: the best of ``copyBandwidths``."""
    return max(copyBandwidths(size).values())


def machine():
    """One line naming the device the numbers were taken on."""
    import platform

    if backend.isGpu:
        properties = backend.xp.cuda.runtime.getDeviceProperties(0)
        return f"GPU {properties['name'].decode()} (CuPy {backend.xp.__version__})"
    cores = len(__import__("os").sched_getaffinity(0))
    return f"CPU {platform.processor() or platform.machine()}, {cores} cores (NumPy {numpy.__version__})"
