"""PlateauSchedule: the rate times ``factor`` once a metric has stopped improving for ``patience`` epochs."""

import math
import numbers

from minidl.errors import OptimizerError
from minidl.optim.schedules.schedule import Schedule
from minidl.validation import checkInteger, checkNumber

MODES = ("min", "max")


class PlateauSchedule(Schedule):
    """PyTorch's ReduceLROnPlateau with relative thresholds: ``step(metric)`` counts an epoch as better when
    ``metric < best · (1 − threshold)`` (mode "min") or ``metric > best · (1 + threshold)`` (mode "max"), else
    as bad; after more than ``patience`` bad epochs in a row the rate becomes ``max(rate · factor,
    minLearnRate)`` (unchanged when that changes it by no more than ``eps``), the bad count restarts, and the
    next ``cooldown`` epochs count as neither.
    """

    needsMetric = True
    stateNames = ("t", "baseLearnRate", "learnRateNow", "best", "badEpochs", "cooldownLeft")

    def __init__(self, optimizer, factor=0.1, patience=10, threshold=1e-4, mode="min", cooldown=0, minLearnRate=0.0,
                 eps=1e-8):
        self.factor = checkNumber(factor, "factor", OptimizerError, low=0.0, high=1.0, highOpen=True)
        self.patience = checkInteger(patience, "patience", OptimizerError, minimum=0)
        self.threshold = checkNumber(threshold, "threshold", OptimizerError, low=0.0)
        if mode not in MODES:
            raise OptimizerError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.cooldown = checkInteger(cooldown, "cooldown", OptimizerError, minimum=0)
        self.minLearnRate = checkNumber(minLearnRate, "minLearnRate", OptimizerError, low=0.0)
        self.eps = checkNumber(eps, "eps", OptimizerError, low=0.0)
        super().__init__(optimizer)
        self.learnRateNow = self.baseLearnRate
        self.best = math.inf if mode == "min" else -math.inf
        self.badEpochs = 0
        self.cooldownLeft = 0

    def isBetter(self, metric):
        if self.mode == "min":
            return metric < self.best * (1 - self.threshold)
        return metric > self.best * (1 + self.threshold)

    def step(self, metric):
        """Count one epoch whose monitored value is ``metric`` (a real number) and reduce the rate on a plateau."""
        if isinstance(metric, bool) or not isinstance(metric, numbers.Real):
            raise OptimizerError(f"{self!r}.step needs the monitored metric, a real number, got {metric!r}")
        metric = float(metric)
        if self.isBetter(metric):
            self.best, self.badEpochs = metric, 0
        else:
            self.badEpochs += 1
        if self.cooldownLeft > 0:
            self.cooldownLeft -= 1
            self.badEpochs = 0
        if self.badEpochs > self.patience:
            reduced = max(self.learnRateNow * self.factor, self.minLearnRate)
            if self.learnRateNow - reduced > self.eps:
                self.learnRateNow = reduced
                self.setRate(reduced)
            self.cooldownLeft, self.badEpochs = self.cooldown, 0
        self.t += 1

    def currentRate(self):
        return self.learnRateNow

    def checkState(self, attrs):
        checkNumber(attrs["learnRateNow"], "learnRateNow", OptimizerError, low=0.0)
        checkInteger(attrs["badEpochs"], "badEpochs", OptimizerError, minimum=0)
        checkInteger(attrs["cooldownLeft"], "cooldownLeft", OptimizerError, minimum=0)
        best = attrs["best"]
        if isinstance(best, bool) or not isinstance(best, numbers.Real) or math.isnan(best):
            raise OptimizerError(f"best must be a number, got {best!r}")
