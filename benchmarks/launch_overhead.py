"""minidl's Python per launch on a GPU, beside CuPy's own call: an Elementwise, a Reduction and a product on small
arrays, each called through minidl and as CuPy alone (the ElementwiseKernel or ReductionKernel minidl launches, and
CuPy's own matmul), many times in a row; the difference is minidl's part (its signature prepared at the first call:
``minidl.backend.devicelaunch``, ``products.ProductPlan``). GPU only: on the simulated device "CuPy alone" would be
the simulation's own host work, so there ``minidl profile``'s host time per launch, timed with CuPy's call made a
no-op, stands for minidl's part.

    python -m benchmarks.launch_overhead [--calls 2000]
"""

import argparse
import os
import sys

import numpy

from benchmarks.host_kernels import addKer, sumKer
from benchmarks.timing import machine, medianSeconds
from minidl import backend
from minidl.backend.products import matmul


def perCall(call, calls):
    """µs per call of ``call()``, ``calls`` of them in a row, the device synchronised after each run of them."""
    def inARow():
        for _ in range(calls):
            call()

    return medianSeconds(inARow, repeats=7, warmup=1) / calls * 1e6


def rows(calls):
    """(what, minidl µs, CuPy alone µs, what CuPy alone is) per call."""
    xp = backend.xp
    x, y, z = (xp.ones(16, dtype=numpy.float32) for _ in range(3))
    table, sums = xp.ones((4, 16), dtype=numpy.float32), xp.zeros(16, dtype=numpy.float32)
    a, b, out = xp.ones((32, 64), numpy.float32), xp.ones((64, 16), numpy.float32), xp.zeros((32, 16), numpy.float32)
    elementwise, reduction = addKer.cupyKernel(), sumKer.cupyKernel()
    return [
        ("Elementwise, 3 arrays of 16 float32", perCall(lambda: addKer(x, y, z), calls),
         perCall(lambda: elementwise(x, y, z), calls), "its cupy.ElementwiseKernel"),
        ("Reduction, 4x16 float32 summed over axis 0", perCall(lambda: sumKer(table, sums, axis=0), calls),
         perCall(lambda: reduction(table, sums, axis=(0,), keepdims=False), calls), "its cupy.ReductionKernel"),
        ("product, 32x64 by 64x16 into out", perCall(lambda: matmul(a, b, out=out), calls),
         perCall(lambda: xp.matmul(a, b, out=out), calls), "CuPy's own matmul"),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls in a row per timing")
    args = parser.parse_args()
    if backend.name != "cupy":
        sys.exit(f"benchmarks.launch_overhead compares minidl's launches with CuPy's on a GPU (the backend here is "
                 f"{backend.name}); on the simulated device, minidl profile's host time per launch is minidl's part")
    print(f"# {machine()}, backend {backend.name}; load average {os.getloadavg()[0]:.1f}; {args.calls} calls in a "
          f"row, median of 7\n")
    print("| call | minidl µs | CuPy alone µs | minidl's part µs | CuPy alone is |")
    print("|---|---:|---:|---:|---|")
    for what, minidl, alone, how in rows(args.calls):
        print(f"| {what} | {minidl:.2f} | {alone:.2f} | {minidl - alone:.2f} | {how} |")


if __name__ == "__main__":
    main()
