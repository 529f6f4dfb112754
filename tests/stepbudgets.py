"""The per-step counts of the reference networks on the simulated device, as JSON on stdout: one training step of
resnet18 (3x32x32, batch 32), the residual CNN of benchmarks.residual_step, the LSTM and the transformer language
models of ``minidl train --task text`` (batch 32), each after a warm-up step, the launches too narrow for a GPU
(``narrowLaunches``), and for all but resnet18 (whose replay, four simulated steps more, would take two minutes for
what the residual CNN shows) the same step as training takes it, replayed as a CUDA graph (``replay``). Run by
tests/test_step_budgets.py (``MINIDL_BACKEND=simulated python -m tests.stepbudgets``); the table in
benchmarks/README.md comes from it."""

import json
import sys

from minidl import backend
from minidl.cli.profile import classifyStep, profileReplay, profileStep, textStep, trainerStep

NETWORKS = ("resnet18", "residual", "lstm", "transformer")
REPLAYED = ("residual", "lstm", "transformer")
LARGE, WIDE = 2**20, 2**16  # a launch over a tensor of LARGE elements or more must run WIDE threads or more


def residualStep(capture=False):
    from benchmarks.residual_step import BATCH, CLASSES, SHAPE, minidlNet

    return trainerStep(minidlNet()[0], BATCH, SHAPE, CLASSES, capture=capture)


def stepOf(network, capture=False):
    if network == "resnet18":
        return classifyStep("resnet18", 32, (3, 32, 32), capture=capture)[0]
    if network == "residual":
        return residualStep(capture)
    return textStep(network, 32, capture=capture)[0]


def main(networks):
    backend.seed(0)
    counts = {}
    for network in networks:
        recorded, figures = profileStep(stepOf(network), hostPerLaunch=0.0)
        figures["narrowLaunches"] = sorted({(launch.name, launch.threads, launch.largestArray)
                                            for launch in recorded.launches
                                            if launch.largestArray >= LARGE and launch.threads < WIDE})
        if network in REPLAYED:
            figures["replay"] = profileReplay(stepOf(network, capture=True), hostPerLaunch=0.0)
        counts[network] = figures
    json.dump(counts, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:] or NETWORKS)
