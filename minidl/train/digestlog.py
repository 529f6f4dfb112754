"""Digests: a fit callback writing the parameter digests (``minidl.train.digest``) of a run as JSON lines,

    {"step": 120, "epoch": 2, "digests": {"float32": "9f0c..."}}

``step`` is the optimizer's count of steps taken (``optimizer.t``), ``epoch`` the finished epochs. By default one
line after every epoch; ``everySteps=K`` adds one every K steps inside an epoch (``1``: every step), for a run on
an ImageLoader (whose fit loop reports its steps to callbacks). A resumed run keeps the lines of the steps its
checkpoint had reached and appends after them, so its log equals the uninterrupted run's.
"""

import json
import os

from minidl.train.callbacks import PeriodicFile
from minidl.train.digest import parameterDigests


class Digests(PeriodicFile):
    """``Digests(path, every=1, everySteps=None)``: a digest line every ``every`` epochs and after the last one,
    and with ``everySteps`` every that many steps inside an epoch."""

    insideEpoch = "digests inside an epoch need a run on an ImageLoader, whose fit loop reports its steps"

    def __init__(self, path, every=1, everySteps=None):
        super().__init__(path, every, everySteps)
        self.file, self.lastStep = None, None

    def onFitStart(self, fit):
        self.start(fit.trainer.optimizer.t)

    def start(self, step):
        """Open the log for a run at optimizer step ``step`` (0, or a resumed run's), keeping the lines up to it
        (a loop outside the fit loop calls ``start``, ``append`` and ``close`` itself)."""
        kept = []
        if step and os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as file:
                kept = [line for line in file if line.strip() and json.loads(line)["step"] <= step]
        self.file = open(self.path, "w", encoding="utf-8")
        self.file.writelines(kept)
        self.file.flush()
        self.lastStep = json.loads(kept[-1])["step"] if kept else None

    def write(self, fit):
        self.append(fit.trainer.optimizer, fit.epoch)

    def append(self, optimizer, epoch):
        """A line of ``optimizer``'s digests at its step, after ``epoch`` finished epochs (once per step). The guard
        is read first: a step the non-finite guard skipped, not yet read, counts in ``t`` until then."""
        optimizer.readGuard()
        step = optimizer.t
        if step == self.lastStep:
            return
        line = {"step": step, "epoch": epoch, "digests": parameterDigests(optimizer)}
        self.file.write(json.dumps(line) + "\n")
        self.file.flush()
        self.lastStep = step

    def onStepEnd(self, fit):
        if self.everySteps is not None and fit.trainer.optimizer.t % self.everySteps == 0:
            self.write(fit)

    def onEpochEnd(self, fit, entry):
        if fit.epoch % self.every == 0 or fit.stop or fit.epoch == fit.epochs:
            self.write(fit)

    def onFitEnd(self, fit):
        self.close()

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None


def readDigests(path):
    """The lines of a digest log as a list of dicts, in order."""
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]
