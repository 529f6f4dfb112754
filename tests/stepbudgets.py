"""The per-step counts of the reference networks on the simulated device, as JSON on stdout: one training step of
resnet18 (3x32x32, batch 32), the residual CNN of benchmarks.residual_step, the LSTM and the transformer language
models of ``minidl train --task text`` (batch 32), each after a warm-up step. Run by tests/test_step_budgets.py
(``MINIDL_BACKEND=simulated python -m tests.stepbudgets``); the table in benchmarks/README.md comes from it."""

import json
import sys

from minidl import backend
from minidl.cli.profile import classifyStep, profileStep, textStep, trainerStep

NETWORKS = ("resnet18", "residual", "lstm", "transformer")


def residualStep():
    from benchmarks.residual_step import BATCH, CLASSES, SHAPE, minidlNet

    return trainerStep(minidlNet()[0], BATCH, SHAPE, CLASSES)


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
