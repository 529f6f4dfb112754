"""Training on host data: Trainer, Validator, Calculator, and checkpoints of a whole run."""

from minidl.train.calculator import Calculator
from minidl.train.checkpoint import Checkpoint, CheckpointSummary, loadCheckpoint, readCheckpointSummary, saveCheckpoint
from minidl.train.trainer import Trainer
from minidl.train.validator import Validator

__all__ = ["Calculator", "Checkpoint", "CheckpointSummary", "Trainer", "Validator", "loadCheckpoint",
           "readCheckpointSummary", "saveCheckpoint"]
