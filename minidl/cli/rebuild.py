"""A run of ``minidl train`` rebuilt from its folder, for ``minidl verify --bisect``: ``rebuildRun(folder)``.

The run's manifest keeps the command's flags as the checks filled them in (``settings``); with them the data are
opened and the network, optimizer, schedule, Trainer and callbacks built as ``minidl train`` builds them
(``buildFit``), with nothing printed. The run is not restored yet: the replay restores it from the checkpoint it
starts at, and runs only the callbacks that write no file.
"""

import argparse
import contextlib
import os

from minidl import backend
from minidl.cli.train import buildFit, openData
from minidl.errors import CheckpointError
from minidl.models import MODELS
from minidl.train.bisect import Replay
from minidl.train.compare import MANIFEST_NAME
from minidl.train.manifest import readManifest


def readSettings(folder):
    """The command settings in a run's manifest; CheckpointError when the manifest holds none (a run the
    ``Manifest`` callback recorded with a Trainer's settings cannot be rebuilt from its folder)."""
    path = os.path.join(folder, MANIFEST_NAME)
    settings = readManifest(path).get("settings")
    if not isinstance(settings, dict) or not {"task", "model", "out", "epochs", "seed"} <= set(settings):
        raise CheckpointError(f"{path} holds no settings of minidl train: --bisect rebuilds a run from the "
                              "command's flags")
    if settings["task"] != "classify":
        raise CheckpointError(f"{path}: --task {settings['task']} runs are not replayed (only --task classify)")
    if settings.get("ranks", 1) != 1:
        raise CheckpointError(f"{path}: a run on {settings['ranks']} MPI ranks is not replayed (--bisect replays "
                              "in one process, whose steps would take another batch)")
    return settings


def silent(*args, **kwargs):
    """A ``say`` that prints nothing: a replay's epochs are not reported."""


@contextlib.contextmanager
def rebuildRun(folder):
    """A context giving the Replay of the run in ``folder`` (its image pipeline open inside it)."""
    # uncaptured: the replay watches every module's forward pass, which a replayed step skips (same bits either way)
    args = argparse.Namespace(**{**readSettings(folder), "capture": False})
    backend.seed(args.seed)
    training, validation, sampleShape, classes, pipeline = openData(args, MODELS[args.model].flat, None)
    with pipeline if pipeline is not None else contextlib.nullcontext():
        fit = buildFit(args, None, "", silent, training, validation, sampleShape, classes, pipeline)
        yield Replay(fit, training[0], training[1], validation, args.epochs)
