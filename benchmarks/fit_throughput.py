"""Training throughput (samples/s, as the fit log reports it) with and without overlapping the next macro-batch's
host-to-device copy with the current one's steps.

MNIST-sized synthetic data (N × 784 float32, 10 classes), the command's MLP, AdaGrad, batch 128, macro-batches of
``--macro`` samples. Each repeat runs one epoch with overlap and one without, alternating; the median repeat
counts. On the CPU a copy is a NumPy copy made at once, so both rows do the same work and the ratio shows noise.

    python -m benchmarks.fit_throughput [--samples 20000] [--macro 2048] [--repeats 5]
"""

import argparse
import time

import numpy

from benchmarks.timing import machine
from minidl import backend
from minidl.cost import CrossEntropy
from minidl.models import mlp
from minidl.optim import AdaGrad
from minidl.train import Trainer


def epochSeconds(trainer, data, labels, macro, overlap):
    trainer.overlapCopies = overlap
    start = time.perf_counter()
    trainer.trainFromHost(data, labels, macroBatchSize=macro)
    backend.synchronize()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--macro", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = numpy.random.default_rng(0)
    data = rng.random((args.samples, 784), dtype=numpy.float32)
    labels = rng.integers(0, 10, args.samples).astype(numpy.int32)
    backend.seed(0)
    net = mlp((784,), 10)
    trainer = Trainer(net, CrossEntropy(), AdaGrad(learnRate=0.01).setupOn(net, useGlobalState=True), batchsize=128,
                      verbose=False)
    epochSeconds(trainer, data, labels, args.macro, True)  # warm-up: kernels compiled, memory pools filled
    times = {True: [], False: []}
    for _ in range(args.repeats):
        for overlap in (True, False):
            times[overlap].append(epochSeconds(trainer, data, labels, args.macro, overlap))
    rates = {overlap: args.samples / float(numpy.median(seconds)) for overlap, seconds in times.items()}
    print(f"Run: {machine()}  ")
    print(f"\nOne epoch of {args.samples} samples (784 features), MLP, AdaGrad, batch 128, macro-batches of "
          f"{args.macro}, median of {args.repeats}\n")
    print("| copies | samples/s | speed-up |\n|---|---:|---:|")
    for overlap, label in ((False, "in line with the steps"), (True, "overlapped (side stream on a GPU)")):
        print(f"| {label} | {rates[overlap]:,.0f} | {rates[overlap] / rates[False]:.2f}x |")


if __name__ == "__main__":
    main()
