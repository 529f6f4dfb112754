"""Precision modes: Adam's step on 10M parameters in each mode (float32, float32 with the non-finite guard, float16
with float32 master weights and loss scaling, plain float16, float64), and a training step of the digits MLP in
each dtype (float16 with master weights and dynamic loss scaling), in one run on this machine.

    python -m benchmarks.precision [--size 10000000] [--repeat 5] [--steps 20]

bytes/param counts what a step must read and write per parameter: Adam in float32 reads grad, param, m, v and
writes param, m, v (28); the guard reads the gradient once more; the master kernel reads the float16 gradient and
parameter (the parameter to notice in-place changes), the float32 master, m and v, and writes master, m, v and the
float16 parameter (30). On the CPU, float16 has no native arithmetic (NumPy converts every element and has no
half BLAS): float16 is slower there. Its speed is a GPU matter (tensor cores): run this on one.
"""

import argparse
import time

import numpy

from benchmarks.timing import copyBandwidth, machine, medianSeconds
from minidl import backend
from minidl.cost import CrossEntropy
from minidl.datasets import loadDigits
from minidl.models import mlp
from minidl.nn import Linear
from minidl.optim import Adam, LossScaler
from minidl.train import Trainer

MODES = [  # (label, parameter dtype, setupOn options, guard, bytes per parameter)
    ("float32", numpy.float32, {}, "off", 28),
    ("float32, guard on (nonFinite='raise')", numpy.float32, {}, "raise", 32),
    ("float16, float32 masters, loss scaling, guard on", numpy.float16, {"lossScaler": LossScaler()}, "raise", 32),
    ("float16, no masters (masterWeights=False)", numpy.float16, {"masterWeights": False}, "off", 22),
    ("float64", numpy.float64, {}, "off", 56),
]


def optimizerRows(size, repeat):
    bandwidth = copyBandwidth(size)
    print(f"# {machine()}; copy bandwidth {bandwidth:.1f} GB/s")
    print(f"\nAdam step, {size:,} parameters, global state\n")
    print("| mode | ms/step | bytes/param | GB/s | of copy bandwidth | time against float32 |")
    print("|---|---:|---:|---:|---:|---:|")
    reference = None
    for label, dtype, options, guard, bytesPerParam in MODES:
        layer = Linear(1000, max(1, size // 1000), useBias=False, dtype=dtype)
        layer.vars["W"].grad[...] = 1e-3
        optimizer = Adam().setupOn(layer, useGlobalState=True, **options)
        optimizer.nonFinite = guard
        seconds = medianSeconds(optimizer.update, repeat, warmup=1)
        reference = reference or seconds
        rate = bytesPerParam * layer.W.size / seconds / 1e9
        print(f"| {label} | {1e3 * seconds:.1f} | {bytesPerParam} | {rate:.1f} | {rate / bandwidth:.0%} | "
              f"{seconds / reference:.2f}x |")


def trainRows(steps):
    digits = loadDigits()
    print(f"\nTraining step of the digits MLP (64-256-256-10, Adam, batch 128), median of {steps} steps\n")
    print("| dtype | ms/step | time against float32 |")
    print("|---|---:|---:|")
    times = {}
    for dtype in ("float32", "float16", "float64"):
        backend.seed(0)
        net = mlp((64,), 10).calcMode(dtype)
        scaler = LossScaler() if dtype == "float16" else None
        trainer = Trainer(net, CrossEntropy(), Adam().setupOn(net, useGlobalState=True, lossScaler=scaler),
                          batchsize=128, verbose=False)
        data = backend.toDevice(digits.trainData[:128].astype(dtype))
        labels = backend.toDevice(digits.trainLabels[:128])
        trainer.step(data, labels)
        backend.synchronize()
        samples = []
        for _ in range(steps):
            start = time.perf_counter()
            trainer.step(data, labels)
            backend.synchronize()
            samples.append(time.perf_counter() - start)
        times[dtype] = float(numpy.median(samples))
        print(f"| {dtype} | {1e3 * times[dtype]:.2f} | {times[dtype] / times['float32']:.2f}x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000, help="parameters (rounded to a multiple of 1000)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    optimizerRows(args.size, args.repeat)
    trainRows(args.steps)


if __name__ == "__main__":
    main()
