"""Timing helpers shared by the benchmark scripts: median wall time of a device operation, and the
machine's copy bandwidth measured in the same run."""

import json
import subprocess
import sys
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

    cores = len(__import__("os").sched_getaffinity(0))
    cpu = f"CPU {platform.processor() or platform.machine()}, {cores} cores (NumPy {numpy.__version__})"
    if backend.name == "simulated":
        return f"the simulated device (no GPU) on {cpu}"
    if backend.isGpu:
        properties = backend.xp.cuda.runtime.getDeviceProperties(0)
        return f"GPU {properties['name'].decode()} (CuPy {backend.xp.__version__})"
    from minidl.backend.hostblas import hostBlas

    return f"{cpu}, products: {hostBlas()}"


def reportRepeats(steps, count, repeats, about=None, clock=time.perf_counter):
    """A worker's report: time ``repeats`` repeats of ``steps()`` (which runs ``count`` steps) after one untimed
    repeat that warms up, and print the seconds per step of each repeat as JSON, with ``about``, as the last line
    (what ``runWorkers`` reads). The device is synchronised before the clock starts and before it is read: on a GPU
    ``steps()`` returns once its work is queued, and a repeat times the work, not its launches."""
    timings = []
    for repeat in range(repeats + 1):
        backend.synchronize()
        start = clock()
        steps()
        backend.synchronize()
        if repeat:
            timings.append((clock() - start) / count)
    print(json.dumps({"seconds": timings, **(about or {})}))


def runWorkers(module, names, rounds, arguments=()):
    """Time each implementation in a process of its own: run ``python -m module --worker NAME *arguments`` for
    every name in turn, ``rounds`` times, alternating, and return {name: [the JSON each run printed last]}.

    Two frameworks in one process share it badly on a small CPU: PyTorch's OpenMP threads spin after each of its
    calls and take the cores that minidl's kernels and products need (minidl's own threads spin half a millisecond
    at most, then sleep, so merely importing torch costs minidl nothing: benchmarks.residual_step times that). A
    user runs one framework per process, so the benchmarks do too; alternating spreads the machine's drift."""
    results = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            command = [sys.executable, "-m", module, "--worker", name, *arguments]
            run = subprocess.run(command, capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError(f"the {name} worker failed: $ {' '.join(command)}\n{run.stdout}{run.stderr}")
            results[name].append(json.loads(run.stdout.strip().splitlines()[-1]))
    return results
