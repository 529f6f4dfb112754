"""Checkpoints: a module, its optimizer, the epoch and the random state in one safetensors file.

Tensors (readable by any safetensors reader):

* ``module.<name>``: each parameter and buffer, named as in ``module.getArrayTable()`` (``module.0.W``,
  ``module.0.b``, and ``module.1.mean``, ``module.1.var`` for a BatchNorm's running statistics);
* ``optimizer.<var>.<state>``: each optimizer state array, named as in ``optimizer.getStateTable()``
  (``optimizer.0.W.h`` for AdaGrad's accumulator).

Metadata (strings): ``format`` = "minidl.checkpoint", ``epoch``, ``random`` (the backend's host random
state, JSON), ``optimizer`` (the class name), ``attrs`` (``optimizer.getAttrDict()``, JSON), ``extra``
(anything JSON-able the caller keeps, e.g. a training history), ``architecture`` (the module's, JSON:
minidl.nn.architecture; ``minidl.load`` rebuilds the network from it) and ``crc32``.
"""

import json
from dataclasses import dataclass

from minidl.backend import getRandomState, setRandomState, toHost
from minidl.errors import CheckpointError, MinidlError
from minidl.nn.architecture import architectureMetadata
from minidl.tensorfile import TensorFile, copyTensors, parseJson, writeTensors

CHECKPOINT_FORMAT = "minidl.checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    """What ``loadCheckpoint`` returns besides the restored state: the epoch and the caller's ``extra``."""

    epoch: int
    extra: object = None


def _arrays(module, optimizer):
    """Every array a checkpoint holds, by tensor name (device arrays; views where the optimizer keeps them)."""
    arrays = {f"module.{name}": array for name, array in module.getArrayTable().items()}
    arrays.update({f"optimizer.{name}": array for name, array in optimizer.getStateTable().items()})
    return arrays


def saveCheckpoint(path, module, optimizer, epoch, extra=None):
    """Write module, optimizer, ``epoch`` (the number of finished epochs) and the random state, atomically."""
    optimizer.checkSetUpOn(module)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CheckpointError(f"epoch must be a non-negative integer, got {epoch!r}")
    try:
        extraText = json.dumps(extra)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"extra must be JSON-serializable: {error}") from error
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "epoch": str(epoch),
        "random": json.dumps(getRandomState()),
        **optimizer.attrMetadata(),
        "extra": extraText,
        **architectureMetadata(module),
    }
    writeTensors(path, {name: toHost(array) for name, array in _arrays(module, optimizer).items()}, metadata)


def loadCheckpoint(path, module, optimizer=None):
    """Restore what ``saveCheckpoint`` wrote, on any device; returns a Checkpoint(epoch, extra).

    Without an optimizer only the module's parameters and buffers are loaded (to predict with the trained
    network): the optimizer's state and the random state in the file are left alone.

    CheckpointError, with module, optimizer and random state unchanged, when the file is missing, unreadable,
    damaged or foreign, its names, shapes, dtypes or optimizer class differ from these (all checked from the
    header, before any tensor is read), or its values cannot be valid state.
    """
    if optimizer is None:
        return _loadModule(path, module)
    optimizer.checkSetUpOn(module)
    targets = _arrays(module, optimizer)
    with TensorFile(path, CHECKPOINT_FORMAT) as file:
        metadata = file.metadata
        attrs = optimizer.attrsFromMetadata(metadata, path)
        epoch, random, extra = _runEntries(metadata, path)
        tensors = file.read(targets)
    checkStateValues(module, optimizer, tensors, path)
    previous = getRandomState()
    try:
        setRandomState(random)
        optimizer.setAttrDict(attrs)
    except MinidlError as error:
        setRandomState(previous)
        raise CheckpointError(f"{path}: {error}") from error
    copyTensors(targets, tensors)
    optimizer.clearGuard()  # a step skipped before the load, not yet read, is none of the loaded run's
    return Checkpoint(epoch, extra)


def _loadModule(path, module):
    """The module's part of a checkpoint, checked as a whole file (header, checksum), into ``module``."""
    targets = {f"module.{name}": array for name, array in module.getArrayTable().items()}
    with TensorFile(path, CHECKPOINT_FORMAT) as file:
        epoch, _, extra = _runEntries(file.metadata, path)
        tensors = file.read(targets, prefix="module.")
    _checkModuleValues(module, tensors, path)
    copyTensors(targets, tensors)
    return Checkpoint(epoch, extra)


def checkStateValues(module, optimizer, tensors, path):
    """CheckpointError unless the loaded host ``tensors`` hold values the module and the optimizer can have
    (a BatchNorm's running variance >= 0, its statistics finite) and the optimizer's state can hold (finite,
    accumulators of squares >= 0: ``optimizer.checkLoadedState``), before anything is changed."""
    _checkModuleValues(module, tensors, path)
    optimizer.checkLoadedState(_entriesUnder(tensors, "optimizer."), path)


def _checkModuleValues(module, tensors, path):
    try:
        module.checkBufferValues(_entriesUnder(tensors, "module."))
    except MinidlError as error:
        raise CheckpointError(f"{path}: {error}") from error


def _entriesUnder(tensors, prefix):
    """The tensors whose names start with ``prefix``, named without it."""
    return {name[len(prefix):]: array for name, array in tensors.items() if name.startswith(prefix)}


@dataclass(frozen=True)
class CheckpointSummary:
    """What a checkpoint file says without a module: its epoch, extra, optimizer class name and attributes."""

    epoch: int
    extra: object
    optimizer: str
    attrs: dict


def readCheckpointSummary(path):
    """The CheckpointSummary of a checkpoint file, read whole and verified by its checksum (CheckpointError
    otherwise), so that a caller can check a run's settings before building anything."""
    with TensorFile(path, CHECKPOINT_FORMAT) as file:
        metadata = file.metadata
        epoch, _, extra = _runEntries(metadata, path)
        attrs = parseJson(metadata.get("attrs", ""), path, "optimizer attributes")
        file.read()
    if not isinstance(attrs, dict) or not isinstance(metadata.get("optimizer"), str):
        raise CheckpointError(f"{path}: the optimizer class or attributes are missing")
    return CheckpointSummary(epoch, extra, metadata["optimizer"], attrs)


def _runEntries(metadata, path):
    """The epoch, random state and extra entry of checkpoint metadata; CheckpointError unless all are valid."""
    if not {"epoch", "random", "extra"} <= set(metadata):
        raise CheckpointError(f"{path}: the epoch, the random state or the extra entry is missing")
    epoch = parseJson(metadata["epoch"], path, "epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < 2**63:
        raise CheckpointError(f"{path}: the epoch must be an integer in [0, 2**63), got {epoch!r:.100}")
    return epoch, parseJson(metadata["random"], path, "random state"), parseJson(metadata["extra"], path, "extra entry")
