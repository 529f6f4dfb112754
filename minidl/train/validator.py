"""Validator: the mean error of a module over host data, and its accuracy for classification."""

from minidl.backend import readChecks
from minidl.cost import CrossEntropy
from minidl.nn import CapturedForward
from minidl.nn.module import evaluating
from minidl.train.batches import checkHostData, checkPositive, deviceBatches, progressBar
from minidl.train.datacheck import checkDataSet, checkLoader, checkParts
from minidl.train.metrics import ClassMetrics
from minidl.validation import checkFlag


class Validator:
    """``Validator(module, cost, batchsize=128, capture=True)``; runs the module in eval mode and never changes
    it: every module's mode (train or eval) is put back when a validation ends. With ``capture`` the forward pass
    of each batch shape is recorded once and replayed (``minidl.nn.CapturedForward``, the same bits)."""

    def __init__(self, module, cost, batchsize=128, verbose=True, topK=(), capture=True):
        checkParts("Validator", module, cost)
        self.module, self.cost = module, cost
        self.forward = CapturedForward(module) if checkFlag(capture, "capture") else module
        self.batchsize = checkPositive("batchsize", batchsize)
        self.verbose = verbose
        self.metrics = ClassMetrics(topK)
        self.error = None
        self.accuracy = None
        self.report = None

    def validateFromHost(self, data, target, macroBatchSize=10000):
        """Return the mean error over the data (weighted by samples), also kept in ``self.error``.

        For a classification cost (CrossEntropy) ``self.report`` is the pass's ClassReport (confusion matrix,
        top-k for each k of ``topK``, per-class precision, recall, F1; counted on the device, read once) and
        ``self.accuracy`` the fraction of samples whose highest score is at their label; for other costs both
        are None.
        """
        size = checkHostData(data, target)
        macroBatchSize = checkPositive("macroBatchSize", macroBatchSize)
        checkDataSet(self.module, self.cost, data, target, macroBatchSize)
        return self.validateBatches(deviceBatches((data, target), self.batchsize, macroBatchSize), size)

    def validateFromLoader(self, loader):
        """``validateFromHost`` over the batches of an ImageLoader (its epoch 0: a validation part's order and
        centre crops do not depend on the epoch)."""
        checkLoader(self.module, self.cost, loader)
        return self.validateBatches(loader.deviceBatches(0), len(loader))

    def validateBatches(self, batches, size):
        """The pass over device minibatches (scores, labels) behind both ``validate`` methods."""
        classify = isinstance(self.cost, CrossEntropy)
        self.cost.resetAccumulator()
        self.metrics.reset()
        with evaluating(self.module), progressBar(size, "validate", self.verbose) as progress:
            for batch, labels in batches:
                scores = self.forward(batch)
                self.cost.validate(scores, labels)
                if classify:
                    self.metrics.update(scores, labels, self.cost.ignoreIndex)
                progress.update(len(labels))
        readChecks()  # labels or indices out of range, found on a GPU during the pass
        self.error = self.cost.getMeanError()
        self.report = self.metrics.report() if classify else None
        self.accuracy = self.report.accuracy if classify else None
        return self.error
