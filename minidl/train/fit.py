"""Fit: the training loop users expect: epochs of training and validation, a learning-rate schedule, callbacks
(early stopping, checkpoints, logs), and an exact resume from a checkpoint.

Each epoch: one training pass (a per-step schedule steps after every optimizer step), a validation pass when
validation data are given, one history entry (``epoch``, ``trainError``, ``valError``, ``valAccuracy``,
``valTop<k>``, ``learnRate`` (the rate the epoch started with), ``seconds``, ``samplesPerSecond``), then the
per-epoch schedule step (the plateau schedule gets the entry's ``scheduleMetric``), then the callbacks in
order, the ones that write checkpoints last so that those hold every other callback's state. In data-parallel
training (the optimizer has a nodeinfo) every rank runs the same loop, and only rank 0 runs the callbacks that
write files.

A checkpoint of a fit run (``saveFitCheckpoint``) keeps in its ``extra`` the history, the schedule's and the
callbacks' state and whether the run stopped early; resuming from it continues exactly as the run would have
(same parameters, optimizer state, random draws, rates and callback decisions). A checkpoint written otherwise
(``saveCheckpoint`` with any other ``extra``) resumes after its epoch with fresh callbacks, for a run without a
schedule only (there is no schedule state to restore).
"""

import time

from minidl.cost import CrossEntropy
from minidl.datasets.imageloader import ImageLoader
from minidl.errors import CallbackError, CheckpointError, DataError, MinidlError, OptimizerError
from minidl.optim.schedules import Schedule, rateName
from minidl.tensorfile import parseJson, readTensors
from minidl.train.batches import checkHostData, checkPositive
from minidl.train.callbacks import Callback, knownMode
from minidl.train.checkpoint import CHECKPOINT_FORMAT, loadCheckpoint, saveCheckpoint
from minidl.train.datacheck import checkDataSet, checkLoader
from minidl.train.validator import Validator

SCHEDULE_EVERY = ("epoch", "step")


class Fit:
    """``Fit(trainer, schedule=None, callbacks=(), scheduleEvery="epoch", scheduleMetric="valError", topK=(),
    macroBatchSize=10000, verbose=True)``; ``run(data, labels, epochs, validation=None, resume=None)`` returns
    the history. ``verbose`` prints one line per epoch (rank 0 only in data-parallel training).

    Callbacks see the run as this object: ``trainer``, ``validator``, ``schedule``, ``epoch`` (finished epochs),
    ``history`` (a list of dicts), ``stop`` (set it to end the run after this epoch).
    """

    def __init__(self, trainer, schedule=None, callbacks=(), scheduleEvery="epoch", scheduleMetric="valError",
                 topK=(), macroBatchSize=10000, verbose=True):
        if schedule is not None and not isinstance(schedule, Schedule):
            raise OptimizerError(f"schedule must be a minidl.optim.schedules.Schedule, got {type(schedule).__name__}")
        if schedule is not None and schedule.optimizer is not trainer.optimizer:
            raise OptimizerError(f"{schedule!r} drives another optimizer than the trainer's {trainer.optimizer!r}")
        if not isinstance(verbose, bool):
            raise OptimizerError(f"verbose must be True or False, got {verbose!r}")
        if scheduleEvery not in SCHEDULE_EVERY:
            raise OptimizerError(f"scheduleEvery must be one of {SCHEDULE_EVERY}, got {scheduleEvery!r}")
        if schedule is not None and schedule.needsMetric and scheduleEvery != "epoch":
            raise OptimizerError(f"{schedule!r} steps on a validation metric: it needs scheduleEvery='epoch'")
        callbacks = list(callbacks)
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise CallbackError(f"callbacks must be minidl.train.callbacks.Callback objects, got {callback!r:.100}")
        self.trainer = trainer
        self.validator = Validator(trainer.module, trainer.cost, trainer.batchsize, trainer.verbose, topK=topK)
        self.schedule, self.scheduleEvery, self.scheduleMetric = schedule, scheduleEvery, scheduleMetric
        nodeinfo = trainer.optimizer.nodeinfo
        self.isRoot = nodeinfo is None or nodeinfo.isRoot
        self.callbacks = sorted(callbacks, key=lambda callback: callback.writesCheckpoints)
        self.macroBatchSize = checkPositive("macroBatchSize", macroBatchSize)
        self.verbose = verbose and self.isRoot
        self.epoch, self.history, self.stop = 0, [], False
        self.position, self.positionSums, self.classes = 0, None, None
        self.epochLearnRate = None  # the rate the current epoch started with (a mid-epoch checkpoint keeps it)

    def metricNames(self, validation):
        """The names of a history entry's values for a run with (or without) validation data."""
        names = ["epoch", "trainError"]
        if validation is not None:
            names.append("valError")
            if isinstance(self.validator.cost, CrossEntropy):
                names += ["valAccuracy", *(f"valTop{k}" for k in self.validator.metrics.topK)]
        return names + ["learnRate", "seconds", "samplesPerSecond"]

    def run(self, data, labels, epochs, validation=None, resume=None):
        """Train until ``epochs`` epochs are done in all (resumed ones included) or a callback stops the run."""
        self.check(data, labels, epochs, validation)
        if resume is not None:
            self.restore(resume)
        for callback in self.active():
            callback.onFitStart(self)
        try:
            while self.epoch < self.epochs and not self.stop:
                self.runEpoch(data, labels, validation)
        finally:
            for callback in self.active():
                callback.onFitEnd(self)
        return self.history

    def check(self, data, labels, epochs, validation=None):
        """Everything ``run`` checks before it changes anything (a resume, the callbacks' files, a step): the
        settings, the callbacks and every sample and label; runs no collective."""
        self.epochs = checkPositive("epochs", epochs)
        self.checkData(data, labels, validation)
        names = self.metricNames(validation)
        if self.schedule is not None and self.schedule.needsMetric:
            if self.scheduleMetric not in names:
                raise OptimizerError(f"scheduleMetric {self.scheduleMetric!r} is none of this run's metrics {names}")
            known, mode = knownMode(self.scheduleMetric), getattr(self.schedule, "mode", None)
            if known is not None and mode is not None and mode != known:
                raise OptimizerError(f"{self.schedule!r} in mode {mode!r} would watch {self.scheduleMetric} the wrong "
                                     f"way ({'lower' if known == 'min' else 'higher'} is better): pass mode={known!r}")
        for callback in self.callbacks:
            callback.check(self, names)
        self.checkContents(data, labels, validation)

    def checkData(self, data, labels, validation):
        """DataError unless the data are host arrays (validation a tuple of them) or ImageLoaders."""
        if isinstance(data, ImageLoader):
            if labels is not None:
                raise DataError("an ImageLoader holds its labels: pass labels=None")
            if validation is not None and not isinstance(validation, ImageLoader):
                raise DataError(f"validation of a loader's run must be an ImageLoader, got {type(validation).__name__}")
            self.classes = list(data.classes)
            return
        checkHostData(data, labels)
        if validation is not None:
            if not isinstance(validation, tuple) or len(validation) != 2:
                raise DataError(f"validation must be a tuple (data, labels), got {type(validation).__name__}")
            checkHostData(*validation)

    def checkContents(self, data, labels, validation):
        """Every sample and label of the training and validation data, checked as the Trainer and the Validator
        check them, before the run changes anything (a resume, the callbacks' files, a step)."""
        trainer = self.trainer
        if isinstance(data, ImageLoader):
            trainer.checkLoader(data, self.macroBatchSize)
            if validation is not None:
                checkLoader(trainer.module, trainer.cost, validation)
            return
        trainer.checkHost(data, labels, self.macroBatchSize)
        if validation is not None:
            checkDataSet(trainer.module, trainer.cost, *validation, self.macroBatchSize)

    def active(self):
        """The callbacks this process runs: all of them, except those writing files on ranks other than 0."""
        return [callback for callback in self.callbacks if self.isRoot or not callback.writesFiles]

    def runEpoch(self, data, labels, validation):
        optimizer = self.trainer.optimizer
        learnRate = getattr(optimizer, rateName(optimizer))
        if self.position and self.epochLearnRate is not None:
            learnRate = self.epochLearnRate  # resumed mid-epoch: the rate the epoch started with
        self.epochLearnRate = learnRate
        perStep = self.schedule.step if self.schedule is not None and self.scheduleEvery == "step" else None
        start = time.perf_counter()
        entry = {"epoch": self.epoch + 1}
        if isinstance(data, ImageLoader):
            resumeAt, self.position = self.position, 0
            if resumeAt:
                self.trainer.cost.setSums(*self.positionSums)
            entry["trainError"] = self.trainer.trainFromLoader(data, self.epoch, resumeAt, afterStep=perStep,
                                                               afterBatch=self.afterBatch,
                                                               macroBatchSize=self.macroBatchSize)
            self.position = 0
        else:
            entry["trainError"] = self.trainer.trainFromHost(data, labels, self.macroBatchSize, afterStep=perStep)
        trained = time.perf_counter()
        if isinstance(validation, ImageLoader):
            entry["valError"] = self.validator.validateFromLoader(validation)
        elif validation is not None:
            entry["valError"] = self.validator.validateFromHost(*validation, macroBatchSize=self.macroBatchSize)
        if validation is not None and self.validator.report is not None:
            entry["valAccuracy"] = self.validator.accuracy
            entry.update({f"valTop{k}": value for k, value in self.validator.report.topK.items()})
        seconds = time.perf_counter() - start
        entry.update(learnRate=learnRate, seconds=seconds, samplesPerSecond=len(data) / (trained - start))
        self.epoch += 1
        self.history.append(entry)
        if self.verbose:
            print(epochLine(entry, self.epochs), flush=True)
        if self.schedule is not None and self.scheduleEvery == "epoch":
            self.schedule.step(entry[self.scheduleMetric]) if self.schedule.needsMetric else self.schedule.step()
        for callback in self.active():
            callback.onEpochEnd(self, entry)

    def afterBatch(self, position):
        """After each step of a loader's epoch: the position, then the callbacks' ``onStepEnd``."""
        self.position = position
        for callback in self.active():
            callback.onStepEnd(self)

    def extra(self):
        """What a checkpoint of this run keeps besides the arrays: history, schedule, callbacks, stop, and for a
        loader's run its classes and the position in the current epoch (None between epochs)."""
        extra = {
            "history": self.history,
            "schedule": None if self.schedule is None else self.schedule.getAttrDict(),
            "callbacks": [[repr(callback), callback.getAttrDict()] for callback in self.callbacks],
            "stopped": self.stop,
        }
        if self.classes is not None:
            cost = self.trainer.cost
            extra["classes"] = self.classes
            extra["position"] = None if not self.position else \
                {"batch": self.position, "errorSum": float(cost.accumErr), "samples": cost.samples,
                 "learnRate": self.epochLearnRate}
        return extra

    def saveCheckpoint(self, path):
        """Write the run as it is now (after ``epoch`` epochs) to ``path``, atomically; the steps' device checks
        and guard are read first (a callback may save mid-epoch), so the optimizer's ``t`` saved is the true one."""
        self.trainer.readDevice()
        saveCheckpoint(path, self.trainer.module, self.trainer.optimizer, self.epoch, extra=self.extra())

    def restore(self, path):
        """Continue from a checkpoint ``saveCheckpoint`` wrote for a run with the same schedule and callbacks; a
        CheckpointError changes nothing."""
        _, metadata = readTensors(path, CHECKPOINT_FORMAT)
        extra = parseExtra(metadata.get("extra"), path)
        if extra is None:
            if self.schedule is not None:
                raise CheckpointError(f"{path} is not a checkpoint of a fit run: it holds no schedule state")
            self.epoch = loadCheckpoint(path, self.trainer.module, self.trainer.optimizer).epoch
            return
        position = self.checkPosition(extra, path)
        names = [name for name, _ in extra["callbacks"]]
        if names != [repr(callback) for callback in self.callbacks]:
            raise CheckpointError(f"{path} was written by a run with the callbacks {names}, not {self.callbacks}")
        if (extra["schedule"] is None) != (self.schedule is None):
            raise CheckpointError(f"{path} was written by a run {'without' if self.schedule else 'with'} a schedule")
        try:
            if self.schedule is not None:
                self.schedule.checkAttrDict(extra["schedule"])
            for callback, (_, attrs) in zip(self.callbacks, extra["callbacks"]):
                callback.checkAttrDict(attrs)
        except MinidlError as error:
            raise CheckpointError(f"{path}: {error}") from error
        checkpoint = loadCheckpoint(path, self.trainer.module, self.trainer.optimizer)
        if self.schedule is not None:
            self.schedule.setAttrDict(extra["schedule"])
        for callback, (_, attrs) in zip(self.callbacks, extra["callbacks"]):
            callback.setAttrDict(attrs)
        self.epoch, self.history, self.stop = checkpoint.epoch, extra["history"][:checkpoint.epoch], extra["stopped"]
        if position is not None:
            self.position, self.positionSums = position["batch"], (position["errorSum"], position["samples"])
            self.epochLearnRate = position.get("learnRate")

    def checkPosition(self, extra, path):
        """The mid-epoch position a checkpoint records (None: between epochs); CheckpointError when it was
        written by a run on other classes, or on host arrays where this run has a loader (or the reverse)."""
        if (self.classes is None) != ("classes" not in extra):
            raise CheckpointError(f"{path} was written by a run {'on' if self.classes is None else 'without'} an "
                                  "image loader")
        if self.classes is None:
            return None
        if extra["classes"] != self.classes:
            raise CheckpointError(f"{path} was written by a run on the classes {extra['classes']!r:.300}, not "
                                  f"{self.classes!r:.300}")
        position = extra["position"]
        if position is None:
            return None
        names = {"batch", "errorSum", "samples"}  # and the epoch's starting learnRate, since it was kept
        if not isinstance(position, dict) or set(position) not in (names, names | {"learnRate"}) \
                or not all(isinstance(position[name], (int, float)) and not isinstance(position[name], bool)
                           for name in position) or position["batch"] < 1:
            raise CheckpointError(f"{path}: the position in the epoch is malformed: {position!r:.200}")
        return position


def epochLine(entry, epochs):
    """The line ``verbose`` prints for a history entry (the words of ``minidl train``'s lines): its epoch of
    ``epochs``, the errors, accuracies, the rate the epoch started with, its time."""
    values = [f"{words} {entry[name]:.4f}" for name, words in (("trainError", "train error"), ("valError", "val error"))
              if name in entry]
    values += [f"val {name[3:].lower()} {entry[name]:.2%}" for name in entry
               if name == "valAccuracy" or name.startswith("valTop")]
    return (f"epoch {entry['epoch']:3d}/{epochs}  {'  '.join(values)}  lr {entry['learnRate']:.4g}  "
            f"{entry['seconds']:.2f} s  {entry['samplesPerSecond']:.0f} samples/s")


def parseExtra(text, path):
    """The ``extra`` of a fit checkpoint, checked for its entries; None for a checkpoint written otherwise."""
    if text is None:
        raise CheckpointError(f"{path}: the extra entry is missing")
    extra = parseJson(text, path, "extra entry")  # CheckpointError for deep values and huge integers too
    expected = {"history", "schedule", "callbacks", "stopped"}
    if not isinstance(extra, dict) or set(extra) not in (expected, expected | {"classes", "position"}):
        return None
    if not isinstance(extra["history"], list) or not isinstance(extra["stopped"], bool) \
            or not isinstance(extra["callbacks"], list) \
            or not all(isinstance(pair, list) and len(pair) == 2 for pair in extra["callbacks"]):
        raise CheckpointError(f"{path}: the fit run's history, callbacks or stop entry is malformed")
    return extra
