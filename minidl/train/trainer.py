"""Trainer: one pass over host data per call, a step per minibatch (forward, cost, zero, backward, update).

In data-parallel training (the optimizer has a ``nodeinfo``) each rank steps through its shard of every
global batch (see ``rankShard``), and the returned error is the mean over the ranks; at the end of the pass the
module's buffers (BatchNorm's running statistics) are averaged over the ranks, so that every rank holds the same.
"""

import numpy

from minidl.backend import hostGenerator, readChecks
from minidl.datasets.augment import Augment
from minidl.datasets.imageloader import ImageLoader
from minidl.errors import DataError
from minidl.optim.dataparallel import averageBuffers
from minidl.train.batches import checkHostData, checkPositive, checkShards, deviceBatches, progressBar, rankShard
from minidl.train.capturedstep import CapturedStep, stepLaunches
from minidl.train.datacheck import checkDataSet, checkLoader, checkParts
from minidl.validation import checkFlag


class Trainer:
    """``Trainer(module, cost, optimizer, batchsize=128, augment=None, dropLast=False)``; the optimizer must be set
    up on ``module``. ``augment`` (a ``minidl.datasets.Augment``) rewrites each host macro-batch of training
    images. On a GPU the next macro-batch's copy overlaps the current one's steps; ``overlapCopies = False``
    turns that off (to compare). With ``dropLast`` a last batch shorter than ``batchsize`` is left out. Steps are
    captured and replayed per batch shape (``step``) unless ``capture=False``.
    """

    overlapCopies = True

    def __init__(self, module, cost, optimizer, batchsize=128, verbose=True, augment=None, dropLast=False,
                 capture=True):
        checkParts("Trainer", module, cost, optimizer)
        self.module, self.cost, self.optimizer = module, cost, optimizer
        self.batchsize = checkPositive("batchsize", batchsize)
        self.verbose = verbose
        if augment is not None and not isinstance(augment, Augment):
            raise DataError(f"augment must be a minidl.datasets.Augment, got {type(augment).__name__}")
        self.augment = augment
        self.dropLast = checkFlag(dropLast, "dropLast", DataError)
        self.stepper = CapturedStep(module, cost, optimizer) if checkFlag(capture, "capture", DataError) else None

    def trainFromHost(self, data, target, macroBatchSize=10000, random=True, afterStep=None):
        """One epoch over host arrays; returns the mean training error (weighted by samples).

        With ``random`` the samples come in an order drawn from the backend's generator (``seed`` makes
        it reproducible, a checkpoint restores it); otherwise in stored order. ``afterStep()``, when given, runs
        after every optimizer step (a per-step learning-rate schedule). The whole data set is checked (see
        datacheck) before the first step or random draw. No step reads the device: the device checks (labels,
        indices: ``readChecks``) and the optimizer's non-finite guard (``readGuard``) are read after each
        macro-batch and at the end of the epoch (or every ``optimizer.syncEvery`` steps when set).
        """
        size, used = self.checkHost(data, target, macroBatchSize)
        checkFlag(random, "random", DataError)
        nodeinfo = self.optimizer.nodeinfo
        order = hostGenerator().permutation(size)[:used] if random else None
        if order is None and used < size:
            data, target = data[:used], target[:used]
        if nodeinfo is not None:
            order = rankShard(numpy.arange(size) if order is None else order, self.batchsize,
                              nodeinfo.index, nodeinfo.gridsize)
        self.module.trainMode()
        self.cost.resetAccumulator()
        verbose = self.verbose and (nodeinfo is None or nodeinfo.isRoot)
        stepsPerMacroBatch = max(1, macroBatchSize // self.batchsize)
        with progressBar(used if order is None else len(order), "train", verbose) as progress, \
                self.optimizer.deferGuard():
            batches = deviceBatches((data, target), self.batchsize, macroBatchSize, order, progress,
                                    transform=self.augment, overlap=self.overlapCopies)
            for index, (batch, labels) in enumerate(batches, start=1):
                self.step(batch, labels)
                if afterStep is not None:
                    afterStep()
                if index % stepsPerMacroBatch == 0:
                    self.readDevice()
            readChecks()
        averageBuffers(nodeinfo, self.module)
        error = self.cost.getMeanError()
        return error if nodeinfo is None else nodeinfo.meanValue(error)

    def checkHost(self, data, target, macroBatchSize):
        """Everything ``trainFromHost`` checks before its first step or random draw (the whole data set: see
        datacheck); returns the number of samples and the number of them an epoch trains on (``dropLast``)."""
        self.optimizer.checkSetUpOn(self.module)
        size = checkHostData(data, target)
        macroBatchSize = checkPositive("macroBatchSize", macroBatchSize)
        checkDataSet(self.module, self.cost, data, target, macroBatchSize)
        if self.augment is not None:
            self.augment.checkImages(data)
        nodeinfo = self.optimizer.nodeinfo
        used = size // self.batchsize * self.batchsize if self.dropLast and nodeinfo is None else size
        self.checkBatches(size, used, nodeinfo)
        if nodeinfo is not None:
            checkShards(size, self.batchsize, nodeinfo.gridsize)  # before the order is drawn
        return size, used

    def checkLoader(self, loader, macroBatchSize):
        """Everything ``trainFromLoader`` checks before its first step: the loader, its batches and every label."""
        self.optimizer.checkSetUpOn(self.module)
        if not isinstance(loader, ImageLoader):
            raise DataError(f"trainFromLoader takes a minidl.datasets.ImageLoader, got {type(loader).__name__}")
        if self.optimizer.nodeinfo is not None:
            raise DataError("image loaders train on one process: data-parallel training takes host arrays")
        if loader.batchsize != self.batchsize:
            raise DataError(f"the loader makes batches of {loader.batchsize}, the Trainer steps on {self.batchsize}")
        checkLoader(self.module, self.cost, loader)
        self.checkBatches(len(loader), len(loader), None)
        return checkPositive("macroBatchSize", macroBatchSize)

    def trainFromLoader(self, loader, epoch, start=0, afterStep=None, afterBatch=None, macroBatchSize=10000):
        """One epoch of an ImageLoader's batches (``epoch`` sets their order and augmentation), or its rest from
        batch ``start``; returns the mean training error (weighted by samples) of the epoch. A whole epoch resets
        the cost's accumulator first; a rest (``start`` > 0) adds to it, so a caller resuming mid-epoch puts the
        interrupted epoch's sums back into it first. ``afterStep()`` runs after every optimizer step,
        ``afterBatch(position)`` after it with the number of batches done in the epoch. The module and every
        label of the loader are checked before the first step. As in ``trainFromHost``, no step reads the device:
        the device checks and the optimizer's guard are read after every ``macroBatchSize`` samples' steps of the
        epoch (counted from its start, so a rest reads at the steps the whole epoch would; or every
        ``optimizer.syncEvery`` steps when set) and at the end of the epoch."""
        stepsPerMacroBatch = max(1, self.checkLoader(loader, macroBatchSize) // self.batchsize)
        self.module.trainMode()
        if start == 0:
            self.cost.resetAccumulator()
        position = start
        with progressBar(len(loader), "train", self.verbose) as progress, self.optimizer.deferGuard():
            progress.update(min(len(loader), start * self.batchsize))
            for batch, labels in loader.deviceBatches(epoch, start):
                self.step(batch, labels)
                progress.update(len(labels))
                position += 1
                if afterStep is not None:
                    afterStep()
                if position % stepsPerMacroBatch == 0:  # the same steps in a run resumed mid-epoch
                    self.readDevice()
                if afterBatch is not None:
                    afterBatch(position)
            readChecks()
        return self.cost.getMeanError()

    def checkBatches(self, size, used, nodeinfo):
        """DataError when a batch of this pass would be smaller than the module trains on (BatchNorm over (N, C)
        needs 2 samples), or when nothing is left to train on."""
        if used == 0:
            raise DataError(f"dropLast leaves nothing of {size} samples in batches of {self.batchsize}")
        smallest = self.batchsize if nodeinfo is not None or used % self.batchsize == 0 else used % self.batchsize
        needed = self.module.minTrainBatch()
        if smallest < needed:
            hint = "raise the batchsize" if smallest == self.batchsize else "pass dropLast=True to the Trainer"
            raise DataError(f"{self.module!r} needs batches of at least {needed} samples in trainMode, but {size} "
                            f"samples in batches of {self.batchsize} end with a batch of {smallest}: {hint}")

    def fit(self, data, labels, epochs, validation=None, schedule=None, callbacks=(), resume=None,
            scheduleEvery="epoch", scheduleMetric="valError", topK=(), macroBatchSize=10000, verbose=True):
        """Train up to ``epochs`` epochs in all with a schedule and callbacks, from scratch or from the checkpoint
        ``resume``, printing one line per epoch unless ``verbose`` is False: ``minidl.train.fit.Fit`` (see it for
        the other options), run; returns the per-epoch history."""
        from minidl.train.fit import Fit

        fit = Fit(self, schedule=schedule, callbacks=callbacks, scheduleEvery=scheduleEvery,
                  scheduleMetric=scheduleMetric, topK=topK, macroBatchSize=macroBatchSize, verbose=verbose)
        return fit.run(data, labels, epochs, validation, resume=resume)


    def readDevice(self):
        """Read what the steps left on the device to be checked: out-of-range labels or indices raise their
        error, then the optimizer's guard its own (or counts the skipped steps)."""
        readChecks()
        self.optimizer.readGuard()

    def step(self, data, target):
        """One optimizer step on one device minibatch; returns its error. Captured (``minidl.train.capturedstep``:
        recorded once per batch shape, then replayed with the same bits) unless the Trainer was made with
        ``capture=False``."""
        if self.stepper is not None:
            return self.stepper(data, target)
        error, guarded = stepLaunches(self.module, self.cost, self.optimizer, data, target)
        self.optimizer.finishUpdate(guarded)
        return error
