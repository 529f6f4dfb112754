"""What stands between a training step and a replay list (issue 25): per reference network, one step recorded
twice (``minidl.backend.kernelrecord``) and the two recordings compared, counting no time.

    python -m benchmarks.capture_census [--batch 32]
    MINIDL_BACKEND=simulated python -m benchmarks.capture_census     # adds the device's launches per step

A replay list of kernel calls reproduces a step only when every launch of the step is a kernel call (on the
simulated device, ``other launches`` counts the rest: operators, products, reductions, copies), every array
a call gets is the same memory each step (``new buffers`` counts calls whose array the step allocated anew) and
every scalar that changes (learning rates, random counters) is read at replay (``changing scalars`` names them).
"""

import argparse
import collections
import contextlib

import numpy

from benchmarks import residual_step
from minidl import backend
from minidl.backend import isGpu
from minidl.backend.kernelrecord import compareSteps, recordingKernels
from minidl.cost import CrossEntropy
from minidl.models import MODELS
from minidl.optim import AdaGrad, Adam
from minidl.train import Trainer

CLASSES = 10


def residual(sampleShape, classes):
    return residual_step.minidlNet()[0]


# name, sample shape, build(sampleShape, classes), optimizer: the digits-sized networks minidl train builds, and
# benchmarks.residual_step's network with its optimizer
NETWORKS = [("mlp", (64,), MODELS["mlp"].build, lambda: AdaGrad(learnRate=0.01)),
            ("cnn", (1, 8, 8), MODELS["cnn"].build, lambda: AdaGrad(learnRate=0.01)),
            ("lstm", (1, 8, 8), MODELS["lstm"].build, lambda: AdaGrad(learnRate=0.01)),
            ("residual", residual_step.SHAPE, residual, lambda: Adam(alpha=1e-3))]


def census(build, sampleShape, makeOptimizer, batch, evaluate):
    """(kernel calls, the launches outside them by name or None, StepDifference) of the third and fourth step (or
    eval forward); None where the device keeps no trace."""
    net = build(sampleShape, CLASSES)
    optimizer = makeOptimizer()
    optimizer.setupOn(net, useGlobalState=True)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=batch, verbose=False, capture=False)
    generator = numpy.random.default_rng(0)
    if evaluate:
        net.evalMode()
    recordings, launches = [], None
    data = backend.xp.empty((batch, *sampleShape), dtype=numpy.float32)
    labels = backend.xp.empty((batch,), dtype=numpy.int32)
    for index in range(4):  # each step's batch copied into the same input arrays, as a replay would
        data[...] = backend.toDevice(generator.standard_normal((batch, *sampleShape)).astype(numpy.float32))
        labels[...] = backend.toDevice(generator.integers(0, CLASSES, batch).astype(numpy.int32))
        run = (lambda: net(data)) if evaluate else (lambda: trainer.step(data, labels))
        with recordingKernels() as calls, deviceTrace() as trace:
            run()
        if index >= 2:
            recordings.append(calls)
            kernels = {call.kernel.name for call in calls}
            launches = None if trace is None else collections.Counter(
                launch.name for launch in trace.launches if launch.name not in kernels)
    return len(recordings[0]), launches, compareSteps(*recordings)


def deviceTrace():
    """The simulated device's trace recording (None on the other devices)."""
    if backend.name != "simulated":
        return contextlib.nullcontext()
    from minidl.backend.simulated.trace import recording

    return recording()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    backend.seed(0)
    print(f"Device: {backend.name} (GPU path: {isGpu}); batch {args.batch}; global state\n")
    print("| network | pass | other launches | kernel calls | stable calls | new views | new buffers | "
          "changing scalars | kernels given arrays allocated in the step |")
    print("|---|---|---|---:|---:|---:|---:|---|---|")
    for name, sampleShape, build, makeOptimizer in NETWORKS:
        for evaluate in (False, True):
            calls, launches, diff = census(build, sampleShape, makeOptimizer, args.batch, evaluate)
            scalars = ", ".join(f"{kernel}.{param}" for kernel, param in diff.changedScalars) or "none"
            others = "-" if launches is None else f"{sum(launches.values())}: " + ", ".join(
                f"{count} {launch}" for launch, count in launches.most_common(4)) + ", ..."
            moved = ", ".join(dict.fromkeys(kernel for kernel, _ in diff.reallocating)) or "none"
            print(f"| {name} | {'eval forward' if evaluate else 'train step'} | "
                  f"{others} | {calls}{'' if diff.sameCalls else ' (differs)'} | "
                  f"{diff.stableCalls} | {diff.newViews} | {diff.newBuffers} | {scalars} | {moved} |")


if __name__ == "__main__":
    main()
