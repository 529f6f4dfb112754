"""Callbacks of a fit run: early stopping, the best model's checkpoint, periodic checkpoints to resume from.

A callback is told about the run (``minidl.train.fit.Fit``) at its start, after every epoch (with that epoch's
history entry) and at its end. Its state (``stateNames``) goes into the run's checkpoints, so a resumed run makes
the same decisions as an uninterrupted one. ``check(fit, names)`` runs before the first step and raises a
CallbackError for a bad setting.
"""

import math
import numbers
import os
import re
import shutil

from minidl.errors import CallbackError
from minidl.validation import checkInteger

MODES = ("min", "max")
LOWER_IS_BETTER = re.compile(r"(train|val)Error")
HIGHER_IS_BETTER = re.compile(r"valAccuracy|valTop[0-9]+")
KEPT_NAME = "checkpoints"  # the folder of a run that keeps its checkpoints by step: what verify --bisect replays
KEPT_FILE = re.compile(r"step-([0-9]+)\.safetensors")  # a checkpoint PeriodicCheckpoint keeps, by optimizer step


def knownMode(metric):
    """"min" for an error (``trainError``, ``valError``), "max" for an accuracy (``valAccuracy``, ``valTop<k>``),
    None for any other metric."""
    if LOWER_IS_BETTER.fullmatch(metric):
        return "min"
    if HIGHER_IS_BETTER.fullmatch(metric):
        return "max"
    return None


def inferMode(metric, mode):
    """``mode`` when given; else "min" for an error (``trainError``, ``valError``) and "max" for an accuracy
    (``valAccuracy``, ``valTop<k>``); CallbackError for any other metric without a mode."""
    if mode is not None:
        if mode not in MODES:
            raise CallbackError(f"mode must be one of {MODES} (or None to infer it from the metric), got {mode!r}")
        return mode
    if not isinstance(metric, str):
        raise CallbackError(f"metric must be the name of a history value, got {metric!r:.100}")
    if knownMode(metric) is not None:
        return knownMode(metric)
    raise CallbackError(f"cannot tell which way {metric!r} improves: pass mode='min' (lower is better) or "
                        "mode='max' (higher is better)")


class Callback:
    """The base: every hook does nothing; ``stateNames`` lists the attributes a checkpoint keeps. Callbacks that
    write checkpoints (``writesCheckpoints``) run after the others; those that write files (``writesFiles``) run
    on rank 0 only in data-parallel training."""

    writesCheckpoints = False
    writesFiles = False
    stateNames = ()

    def __repr__(self):
        return type(self).__name__

    def check(self, fit, names):
        """Raise a CallbackError when this callback cannot serve a run whose history entries hold ``names``."""

    def onFitStart(self, fit):
        pass

    def onEpochEnd(self, fit, entry):
        pass

    def onStepEnd(self, fit):
        """After each optimizer step of a loader's run (``fit.position``: batches done in the epoch)."""

    def onFitEnd(self, fit):
        pass

    def getAttrDict(self):
        return {name: getattr(self, name) for name in self.stateNames}

    def checkAttrDict(self, attrs):
        if not isinstance(attrs, dict) or set(attrs) != set(self.stateNames):
            raise CallbackError(f"{self!r} state must have the entries {sorted(self.stateNames)}, got {attrs!r:.200}")
        for name, value in attrs.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
                raise CallbackError(f"{self!r} state {name} must be a number, got {value!r}")

    def setAttrDict(self, attrs):
        self.checkAttrDict(attrs)
        for name, value in attrs.items():
            setattr(self, name, value)


def checkFolderOf(path, what):
    """CallbackError unless ``path``'s folder exists (checked before training rather than after an epoch)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CallbackError(f"{what}: no folder {folder} to write {os.path.basename(path)} in")


class Monitored(Callback):
    """A callback watching one history value: ``improves(value)`` is ``value < best − minDelta`` (mode "min")
    or ``value > best + minDelta`` (mode "max"); a NaN never improves. Mode None infers the direction from the
    metric's name (``inferMode``); ``str()`` says which way the callback watches."""

    def __init__(self, metric, mode, minDelta):
        mode = inferMode(metric, mode)
        if isinstance(minDelta, bool) or not isinstance(minDelta, numbers.Real) or not 0 <= minDelta < math.inf:
            raise CallbackError(f"minDelta must be a finite number >= 0, got {minDelta!r}")
        self.metric, self.mode, self.minDelta = metric, mode, float(minDelta)
        self.best = math.inf if mode == "min" else -math.inf

    def __str__(self):
        better = "lower" if self.mode == "min" else "higher"
        return f"{type(self).__name__} watching {self.metric} ({self.mode}: {better} is better)"

    def check(self, fit, names):
        if self.metric not in names:
            raise CallbackError(f"{self!r} watches {self.metric!r}, which is none of this run's metrics {names}")

    def improves(self, value):
        if self.mode == "min":
            return value < self.best - self.minDelta
        return value > self.best + self.minDelta


class EarlyStopping(Monitored):
    """Stop the run once ``metric`` has not improved for ``patience`` epochs in a row (mode None: "min" for
    errors, "max" for accuracies, see ``inferMode``); an epoch that improves never stops it (``patience=0``: the
    first epoch that does not improve stops it)."""

    stateNames = ("best", "wait")

    def __init__(self, metric="valError", mode=None, patience=5, minDelta=0.0):
        super().__init__(metric, mode, minDelta)
        self.patience, self.wait = checkInteger(patience, "patience", CallbackError, minimum=0), 0

    def onEpochEnd(self, fit, entry):
        value = entry[self.metric]
        if self.improves(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            fit.stop = True


class BestCheckpoint(Monitored):
    """Write the run's checkpoint to ``path`` (atomically) after each epoch that improves ``metric`` (mode None:
    "min" for errors, "max" for accuracies, see ``inferMode``)."""

    writesCheckpoints = True
    writesFiles = True
    stateNames = ("best",)

    def __init__(self, path, metric="valError", mode=None, minDelta=0.0):
        super().__init__(metric, mode, minDelta)
        self.path = os.fspath(path)

    def check(self, fit, names):
        super().check(fit, names)
        checkFolderOf(self.path, repr(self))

    def onEpochEnd(self, fit, entry):
        if self.improves(entry[self.metric]):
            self.best = entry[self.metric]
            fit.saveCheckpoint(self.path)


class PeriodicFile(Callback):
    """The base of callbacks that write to ``path`` every ``every`` epochs and, with ``everySteps``, every that
    many steps inside an epoch, which only a run on an ImageLoader has (``insideEpoch`` says why, in the error)."""

    writesFiles = True

    def __init__(self, path, every=1, everySteps=None):
        self.path, self.every = os.fspath(path), checkInteger(every, "every", CallbackError, minimum=1)
        self.everySteps = None if everySteps is None else checkInteger(everySteps, "everySteps", CallbackError,
                                                                       minimum=1)

    def check(self, fit, names):
        checkFolderOf(self.path, repr(self))
        if self.everySteps is not None and fit.classes is None:
            raise CallbackError(f"{self!r}: {self.insideEpoch}")


class PeriodicCheckpoint(PeriodicFile):
    """Write the run's checkpoint to ``path`` (atomically) every ``every`` epochs and after the last one, and
    with ``everySteps`` also every that many steps inside an epoch (a run on an ImageLoader only); pass it as
    ``resume`` to continue the run exactly.

    With ``keep`` (a folder) every checkpoint written is also kept there as ``step-<optimizer step>.safetensors``
    (a hard link to the file just written, a copy where the file system has no links), and a run that starts
    from scratch keeps its starting point as ``step-0``: the checkpoints ``minidl verify --bisect`` replays from.
    At its start it removes the kept files of later steps than its own (a replaced run's, or those past the
    checkpoint a run resumes from).
    """

    writesCheckpoints = True
    insideEpoch = "checkpoints inside an epoch need a run on an ImageLoader, whose order is drawn per epoch"

    def __init__(self, path, every=1, everySteps=None, keep=None):
        super().__init__(path, every, everySteps)
        self.keep = None if keep is None else os.fspath(keep)

    def check(self, fit, names):
        super().check(fit, names)
        if self.keep is not None:
            checkFolderOf(os.path.join(self.keep, "step-0.safetensors"), repr(self))

    def onFitStart(self, fit):
        if self.keep is None:
            return
        step = fit.trainer.optimizer.t
        try:
            for name in os.listdir(self.keep):  # kept by a run this one replaces, or past where it resumes
                match = KEPT_FILE.fullmatch(name)
                if match and int(match.group(1)) > step:
                    os.remove(os.path.join(self.keep, name))
        except OSError as error:
            raise CallbackError(f"{self!r}: cannot remove the kept checkpoints of later steps: {error}") from error
        if step == 0:  # into the kept ones only: ``path`` may still hold the good checkpoint of a run replaced
            fit.saveCheckpoint(self.kept(fit))

    def onStepEnd(self, fit):
        if self.everySteps is not None and fit.position % self.everySteps == 0:
            self.save(fit)

    def onEpochEnd(self, fit, entry):
        if fit.epoch % self.every == 0 or fit.stop or fit.epoch == fit.epochs:
            self.save(fit)

    def save(self, fit):
        fit.saveCheckpoint(self.path)
        if self.keep is not None:
            keepCopy(self.path, self.kept(fit))

    def kept(self, fit):
        return os.path.join(self.keep, f"step-{fit.trainer.optimizer.t}.safetensors")


def keepCopy(path, kept):
    """``kept`` becomes a second name of the file at ``path`` (a hard link: the next atomic write of ``path``
    makes a new file and leaves this one as it is), or a copy of it where links cannot be made."""
    temporary = kept + ".partial"
    try:
        if os.path.lexists(temporary):
            os.remove(temporary)
        try:
            os.link(path, temporary)
        except OSError:
            shutil.copyfile(path, temporary)
        os.replace(temporary, kept)
    except OSError as error:
        raise CallbackError(f"cannot keep the checkpoint {path} as {kept}: {error}") from error
