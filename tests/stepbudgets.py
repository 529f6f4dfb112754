"""The per-step counts of the reference networks on the simulated device, as JSON on stdout: one training step of
resnet18 (3x32x32, batch 32), the residual CNN of benchmarks.residual_step, the LSTM and the transformer language
models of ``minidl train --task text`` (batch 32), each after a warm-up step. Run by tests/test_step_budgets.py
(``MINIDL_BACKEND=simulated python -m tests.stepbudgets``); the table in benchmarks/README.md comes from it."""

import json
import sys

import numpy

from minidl import backend
from minidl.cli.profile import classifyStep, profileStep, textStep
from minidl.cost import CrossEntropy
from minidl.optim import Adam
from minidl.train import Trainer

NETWORKS = ("resnet18", "residual", "lstm", "transformer")


def residualStep():
    from benchmarks.residual_step import BATCH, CLASSES, SHAPE, minidlNet

    net, _ = minidlNet()
    optimizer = Adam().setupOn(net, useGlobalState=True)
    optimizer.deferred = True  # as in the Trainer's epochs: the guard is read after a macro-batch, not in the step
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=BATCH, verbose=False)
    rng = numpy.random.default_rng(0)
    data = backend.toDevice(rng.standard_normal((BATCH, *SHAPE), dtype=numpy.float32))
    labels = backend.toDevice(rng.integers(0, CLASSES, BATCH, dtype=numpy.int32))
    net.trainMode()
    return lambda: trainer.step(data, labels)


def stepOf(network):
    if network == "resnet18":
        return classifyStep("resnet18", 32, (3, 32, 32))[0]
    if network == "residual":
        return residualStep()
    return textStep(network, 32)[0]


def main(networks):
    backend.seed(0)
    counts = {}
    for network in networks:
        _, figures = profileStep(stepOf(network), hostPerLaunch=0.0)
        counts[network] = figures
    json.dump(counts, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:] or NETWORKS)
