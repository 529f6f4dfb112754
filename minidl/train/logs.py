"""Logs of a fit run, one row per epoch: CSV, JSON lines, and TensorBoard scalars (the ``tensorboard`` extra).

A resumed run rewrites the file logs from its checkpoint's history, so a log holds each epoch once; the
TensorBoard log drops the events of epochs after the checkpoint (``purge_step``).
"""

import csv
import json
import math
import os
import time

from minidl.errors import CallbackError
from minidl.train.callbacks import Callback, checkFolderOf


class FileLog(Callback):
    """A text log at ``path``, rewritten at the run's start and appended to (and flushed) after every epoch."""

    writesFiles = True

    def __init__(self, path):
        self.path = os.fspath(path)
        self.file = None

    def check(self, fit, names):
        checkFolderOf(self.path, repr(self))
        self.names = names

    def onFitStart(self, fit):
        self.file = open(self.path, "w", newline="", encoding="utf-8")
        self.start()
        for entry in fit.history:
            self.write(entry)
        self.file.flush()

    def onEpochEnd(self, fit, entry):
        self.write(entry)
        self.file.flush()

    def onFitEnd(self, fit):
        if self.file is not None:
            self.file.close()
            self.file = None

    def start(self):
        pass

    def write(self, entry):
        raise NotImplementedError


class CsvLog(FileLog):
    """Comma-separated values with a header row of the run's metric names."""

    def start(self):
        self.writer = csv.DictWriter(self.file, self.names, restval="", extrasaction="ignore")
        self.writer.writeheader()

    def write(self, entry):
        self.writer.writerow(entry)


class JsonLinesLog(FileLog):
    """One JSON object per line (JSON lines), the history entry as it is, except that a NaN or infinite number
    is written as ``null`` (JSON has no such numbers: every line stays valid JSON)."""

    def write(self, entry):
        values = {name: None if isinstance(value, float) and not math.isfinite(value) else value
                  for name, value in entry.items()}
        self.file.write(json.dumps(values, allow_nan=False) + "\n")


class TensorBoardLog(Callback):
    """Scalars for TensorBoard in ``folder``, one per history value and epoch (the epoch is the step), written
    with tensorboardX (``pip install 'minidl[tensorboard]'``)."""

    writesFiles = True

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self.writer = None

    def check(self, fit, names):
        try:
            import tensorboardX  # noqa: F401
        except ImportError as error:
            raise CallbackError("TensorBoardLog needs tensorboardX: pip install 'minidl[tensorboard]'") from error
        checkFolderOf(self.folder, repr(self))

    def onFitStart(self, fit):
        from tensorboardX import SummaryWriter

        # The file name holds the time in whole seconds: a suffix in nanoseconds keeps a resumed run started within
        # the same second from overwriting the first run's file, and keeps the files in order.
        self.writer = SummaryWriter(logdir=self.folder, purge_step=fit.epoch + 1 if fit.epoch else None,
                                    filename_suffix=f".{time.time_ns()}")

    def onEpochEnd(self, fit, entry):
        for name, value in entry.items():
            if name != "epoch":
                self.writer.add_scalar(name, value, entry["epoch"])
        self.writer.flush()

    def onFitEnd(self, fit):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
