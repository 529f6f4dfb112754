"""Trainer: one pass over host data per call, a step per minibatch (forward, cost, zero, backward, update).

In data-parallel training (the optimizer has a ``nodeinfo``) each rank steps through its shard of every
global batch (see ``rankShard``), and the returned error is the mean over the ranks.
"""

import numpy

from minidl.backend import generator
from minidl.cost import Cost
from minidl.datasets.augment import Augment
from minidl.errors import CostError, DataError, ModuleError, OptimizerError
from minidl.nn import Module
from minidl.optim import Optimizer
from minidl.train.batches import checkHostData, checkPositive, deviceBatches, progressBar, rankShard


class Trainer:
    """``Trainer(module, cost, optimizer, batchsize=128, augment=None)``; the optimizer must be set up on ``module``.
    ``augment`` (a ``minidl.datasets.Augment``) rewrites each host macro-batch of training images. On a GPU the
    next macro-batch's copy overlaps the current one's steps; ``overlapCopies = False`` turns that off (to compare).
    """

    overlapCopies = True

    def __init__(self, module, cost, optimizer, batchsize=128, verbose=True, augment=None):
        if not isinstance(module, Module):
            raise ModuleError(f"Trainer expects a Module, got {type(module).__name__}")
        if not isinstance(cost, Cost):
            raise CostError(f"Trainer expects a Cost, got {type(cost).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise OptimizerError(f"Trainer expects an Optimizer, got {type(optimizer).__name__}")
        self.module, self.cost, self.optimizer = module, cost, optimizer
        self.checkSetup()
        self.batchsize = checkPositive("batchsize", batchsize)
        self.verbose = verbose
        if augment is not None and not isinstance(augment, Augment):
            raise DataError(f"augment must be a minidl.datasets.Augment, got {type(augment).__name__}")
        self.augment = augment

    def trainFromHost(self, data, target, macroBatchSize=10000, random=True, afterStep=None):
        """One epoch over host arrays; returns the mean training error (weighted by samples).

        With ``random`` the samples come in an order drawn from the backend's generator (``seed`` makes
        it reproducible, a checkpoint restores it); otherwise in stored order. ``afterStep()``, when given, runs
        after every optimizer step (a per-step learning-rate schedule).
        """
        self.checkSetup()
        size = checkHostData(data, target)
        macroBatchSize = checkPositive("macroBatchSize", macroBatchSize)
        if self.augment is not None:
            self.augment.checkImages(data)
        order = generator().permutation(size) if random else None
        nodeinfo = self.optimizer.nodeinfo
        if nodeinfo is not None:
            order = rankShard(numpy.arange(size) if order is None else order, self.batchsize,
                              nodeinfo.index, nodeinfo.gridsize)
        self.module.trainMode()
        self.cost.resetAccumulator()
        verbose = self.verbose and (nodeinfo is None or nodeinfo.isRoot)
        with progressBar(size if order is None else len(order), "train", verbose) as progress:
            for batch, labels in deviceBatches((data, target), self.batchsize, macroBatchSize, order, progress,
                                               transform=self.augment, overlap=self.overlapCopies):
                self.step(batch, labels)
                if afterStep is not None:
                    afterStep()
        error = self.cost.getMeanError()
        return error if nodeinfo is None else nodeinfo.meanValue(error)

    def fit(self, data, labels, epochs, validation=None, schedule=None, callbacks=(), resume=None, **options):
        """Train up to ``epochs`` epochs in all with a schedule and callbacks, from scratch or from the checkpoint
        ``resume``: ``minidl.train.fit.Fit`` (see it for ``options``), run; returns the per-epoch history."""
        from minidl.train.fit import Fit

        fit = Fit(self, schedule=schedule, callbacks=callbacks, **options)
        return fit.run(data, labels, epochs, validation, resume=resume)

    def checkSetup(self):
        if self.optimizer.module is not self.module:
            raise OptimizerError(
                f"{self.optimizer!r} is not set up on {self.module!r}: call optimizer.setupOn(module) first"
            )

    def step(self, data, target):
        """One optimizer step on one device minibatch; returns its error."""
        error, grad = self.cost(self.module(data), target)
        self.optimizer.zeroGradParams()
        self.module.backward(grad, updGrad=False)
        self.optimizer.update()
        return error
