"""Training on host data: Trainer, Validator, Calculator, checkpoints of a whole run, and the fit loop with its
callbacks, metrics and logs."""

from minidl.train.calculator import Calculator
from minidl.train.callbacks import BestCheckpoint, Callback, EarlyStopping, PeriodicCheckpoint
from minidl.train.checkpoint import (
    Checkpoint,
    CheckpointSummary,
    loadCheckpoint,
    readCheckpointSummary,
    saveCheckpoint,
)
from minidl.train.digest import parameterDigests
from minidl.train.digestlog import Digests, readDigests
from minidl.train.fit import Fit
from minidl.train.logs import CsvLog, JsonLinesLog, TensorBoardLog
from minidl.train.manifest import Manifest
from minidl.train.metrics import ClassMetrics, ClassReport
from minidl.train.trainer import Trainer
from minidl.train.validator import Validator

__all__ = ["Calculator", "Checkpoint", "Trainer", "Validator", "loadCheckpoint", "saveCheckpoint"]
__all__ += ["CheckpointSummary", "readCheckpointSummary"]
__all__ += [
    "BestCheckpoint", "Callback", "ClassMetrics", "ClassReport", "CsvLog", "EarlyStopping", "Fit", "JsonLinesLog",
    "PeriodicCheckpoint", "TensorBoardLog",
]
__all__ += ["Digests", "Manifest", "parameterDigests", "readDigests"]
