"""AdaGrad's step on the CPU: the NumPy reference against the kernel's CUDA text compiled for the host, and
PyTorch's CPU Adagrad (foreach and fused) when torch is installed, in one run.

    python -m benchmarks.host_kernels [--size 10000000]

Memory-bound: a step reads param, grad and h and writes param and h, 20 bytes per float32 parameter, so
GB/s is compared with the copy bandwidth measured in the same run, the best of NumPy's one-thread copy and
an OpenMP copy on every core (the compiled path uses every core). Two more tables: every activation's
kernels on 1M values, where the compiled text leans on the vector math of libmvec, and the cost of one call
on a small array, where the compiled path pays for ctypes and the NumPy path for its ufunc calls: AdaGrad's,
a kernel of three arrays against the NumPy ufunc that does the same (``numpy.add(x, y, out=z)``), and a
``Reduction`` summing a small array over one axis against ``numpy.sum(x, axis=0, out=y)``.
"""

import argparse
import os
import subprocess

import numpy

from benchmarks.timing import copyBandwidths, machine, medianSeconds
from minidl.backend import Elementwise, Reduction, hostkernel
from minidl.nn import activationfunctions
from minidl.optim.adagrad import adagradRule

BYTES_PER_PARAM = 20
LEARN_RATE, EPSILON = 1e-3, 1e-8
ONE = numpy.ones(1, numpy.float32)  # the gradient scale the update kernels read (1: no loss scaling)
TAKE = numpy.zeros(1, numpy.int32)  # the non-finite guard's flag the update kernels read (0: take the step)
adagradKer = adagradRule.direct
THREADS = os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0))
addKer = Elementwise("bench_add", "T x, T y", "T z", "z = x + y", lambda x, y, z: numpy.add(x, y, out=z))
sumKer = Reduction("bench_sum", "T x", "T y", "x", "a + b", "y = a", "0",
                   lambda x, y, axis, keepdims: numpy.sum(x, axis=axis, keepdims=keepdims, out=y))

def minidlRows(size, rng):
    grad = rng.standard_normal(size, dtype=numpy.float32)
    param, h = rng.standard_normal(size, dtype=numpy.float32), numpy.zeros(size, numpy.float32)
    return {
        "minidl NumPy reference (MINIDL_CPU_KERNELS=numpy)":
            medianSeconds(lambda: adagradKer.callNumpy(grad, ONE, TAKE, LEARN_RATE, EPSILON, param, h)),
        "minidl compiled CUDA text (MINIDL_CPU_KERNELS=compiled)":
            medianSeconds(lambda: adagradKer.callCompiled(grad, ONE, TAKE, LEARN_RATE, EPSILON, param, h)),
    }


def torchRows(size, rng):
    try:
        import torch
    except ImportError:
        return {}
    rows = {}
    for option in ("foreach", "fused"):
        param = torch.nn.Parameter(torch.from_numpy(rng.standard_normal(size, dtype=numpy.float32)))
        param.grad = torch.from_numpy(rng.standard_normal(size, dtype=numpy.float32))
        optimizer = torch.optim.Adagrad([param], lr=LEARN_RATE, eps=EPSILON, **{option: True})
        rows[f"PyTorch {torch.__version__} Adagrad({option}=True), {torch.get_num_threads()} threads"] = (
            medianSeconds(optimizer.step))
    return rows


def activationRows(size=1 << 20):
    """(kernel name, NumPy ms, compiled ms) for every activation's forward and derivative kernel."""
    rng = numpy.random.default_rng(0)
    x, grad = rng.standard_normal(size, dtype=numpy.float32), rng.standard_normal(size, dtype=numpy.float32)
    out = numpy.empty_like(x)
    rows = []
    for function in activationfunctions.ALL:
        y = function.forward.callNumpy(x, *function.defaults, numpy.empty_like(x))
        for kernel, args in ((function.forward, (x, *function.defaults, out)),
                             (function.grad, (grad, x if function.gradReads == "x" else y,
                                                    *function.defaults, out))):
            times = [medianSeconds(lambda call=call, args=args: call(*args)) * 1e3
                     for call in (kernel.callNumpy, kernel.callCompiled)]
            rows.append((kernel.name, *times))
    return rows


def smallCallMicroseconds(size=1000):
    grad, param, h = numpy.ones(size, numpy.float32), numpy.ones(size, numpy.float32), numpy.zeros(size, numpy.float32)
    args = (grad, ONE, TAKE, LEARN_RATE, EPSILON, param, h)
    return {
        "NumPy reference": medianSeconds(lambda: adagradKer.callNumpy(*args), 200) * 1e6,
        "compiled": medianSeconds(lambda: adagradKer.callCompiled(*args), 200) * 1e6,
    }


def threeArgumentCallMicroseconds(size=16, calls=1000):
    """µs per call of a kernel of three arrays (x, y -> z) on ``size`` float32 values, and of the NumPy ufunc
    doing the same, each timed over ``calls`` calls in a row."""
    x, y, z = (numpy.ones(size, numpy.float32) for _ in range(3))

    def repeated(call):
        def inARow():
            for _ in range(calls):
                call(x, y, z)
        return medianSeconds(inARow) / calls * 1e6

    return {
        "minidl kernel call, kernel(x, y, z) (compiled path)": repeated(addKer),
        "NumPy ufunc, numpy.add(x, y, out=z)": repeated(lambda x, y, z: numpy.add(x, y, out=z)),
    }


def smallSumMicroseconds(shape=(4, 16), calls=1000):
    """µs per call of a Reduction summing a float32 array of ``shape`` over its first axis (compiled path), and
    of ``numpy.sum`` doing the same, each timed over ``calls`` calls in a row."""
    x, y = numpy.ones(shape, numpy.float32), numpy.zeros(shape[1:], numpy.float32)

    def repeated(call):
        def inARow():
            for _ in range(calls):
                call(x, y)
        return medianSeconds(inARow) / calls * 1e6

    return {
        "minidl Reduction call, sumKer(x, y, axis=0) (compiled path)": repeated(lambda x, y: sumKer(x, y, axis=0)),
        "NumPy, numpy.sum(x, axis=0, out=y)": repeated(lambda x, y: numpy.sum(x, axis=0, out=y)),
    }


def printAdagradPaths(size):
    """The AdaGrad table: NumPy reference, compiled CUDA text and PyTorch, against the copy bandwidth."""
    rng = numpy.random.default_rng(0)
    copies = copyBandwidths(size)
    bandwidth = max(copies.values())
    rows = {**minidlRows(size, rng), **torchRows(size, rng)}
    numpySeconds = next(iter(rows.values()))

    compiler = subprocess.run([hostkernel.findCompiler(), "--version"], capture_output=True, text=True).stdout
    print(f"# {machine()}; {compiler.splitlines()[0]} {' '.join(hostkernel.FLAGS[2:6])}; {THREADS} OpenMP threads")
    print("# copy bandwidth: " + ", ".join(f"{name} {rate:.1f} GB/s" for name, rate in copies.items()))
    print(f"\nAdaGrad step on the CPU, {size:,} float32 parameters ({BYTES_PER_PARAM} bytes/parameter)\n")
    print("| path | ms/step | GB/s | of copy bandwidth | speed-up over NumPy |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in rows.items():
        rate = BYTES_PER_PARAM * size / seconds / 1e9
        print(f"| {name} | {seconds * 1e3:.2f} | {rate:.1f} | {rate / bandwidth:.0%} | {numpySeconds / seconds:.2f}x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000, help="float32 parameters")
    args = parser.parse_args()
    printAdagradPaths(args.size)

    print(f"\nActivation kernels on {1 << 20:,} float32 values\n")
    print("| kernel | NumPy ms | compiled ms | speed-up |")
    print("|---|---:|---:|---:|")
    for name, numpyMs, compiledMs in activationRows():
        print(f"| {name} | {numpyMs:.2f} | {compiledMs:.2f} | {numpyMs / compiledMs:.2f}x |")

    small = smallCallMicroseconds()
    print("\nOne AdaGrad call on 1,000 float32 parameters (the cost of a launch)\n")
    print("| path | µs/call |")
    print("|---|---:|")
    for name, microseconds in small.items():
        print(f"| {name} | {microseconds:.1f} |")

    print(f"\nOne call of a three-array kernel on 16 float32 values (load average {os.getloadavg()[0]:.1f})\n")
    print("| call | µs/call |")
    print("|---|---:|")
    for name, microseconds in threeArgumentCallMicroseconds().items():
        print(f"| {name} | {microseconds:.2f} |")

    print(f"\nOne sum over the first axis of 4x16 float32 values (load average {os.getloadavg()[0]:.1f})\n")
    print("| call | µs/call |")
    print("|---|---:|")
    for name, microseconds in smallSumMicroseconds().items():
        print(f"| {name} | {microseconds:.2f} |")


if __name__ == "__main__":
    main()
