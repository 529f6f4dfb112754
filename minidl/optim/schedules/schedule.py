"""Schedule: the base of every learning-rate schedule.

A schedule owns one optimizer's rate (``learnRate``, or ``alpha`` for Adam-like optimizers): it reads the
base rate once, at construction, sets the rate of step 0 there too (as PyTorch's schedulers do in their
constructor), and sets the rate of step t after its t-th ``step()``. ``getAttrDict()``/``setAttrDict()`` hold
everything a resumed run needs, so a checkpoint restores the schedule exactly.
"""

import math

from minidl.errors import OptimizerError
from minidl.optim.optimizer import Optimizer
from minidl.validation import checkInteger, checkNumber


def rateName(optimizer):
    """The name of the optimizer's learning-rate attribute: ``alpha`` for Adam-like ones, else ``learnRate``."""
    if not isinstance(optimizer, Optimizer):
        raise OptimizerError(f"a schedule needs an Optimizer, got {type(optimizer).__name__}")
    return "alpha" if "alpha" in optimizer.hyperNames else "learnRate"


class Schedule:
    """``step()`` after each epoch (or step); the optimizer's rate is then ``rate(t)`` for the t steps taken."""

    needsMetric = False
    stateNames = ("t", "baseLearnRate")

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.rateName = rateName(optimizer)
        self.baseLearnRate = getattr(optimizer, self.rateName)
        self.t = 0

    def __repr__(self):
        return type(self).__name__

    @property
    def learnRate(self):
        """The optimizer's current rate."""
        return getattr(self.optimizer, self.rateName)

    def setRate(self, value):
        setattr(self.optimizer, self.rateName, value)

    def rate(self, t):
        """The rate after ``t`` steps."""
        raise NotImplementedError

    def step(self):
        """Advance one step and set the optimizer's rate to ``rate(t)``."""
        self.setRate(self.rate(self.t + 1))
        self.t += 1

    def getAttrDict(self):
        """The schedule's state by name (numbers, JSON-able): restore it with ``setAttrDict``."""
        return {name: getattr(self, name) for name in self.stateNames}

    def checkAttrDict(self, attrs):
        """OptimizerError unless ``attrs`` is a state ``setAttrDict`` accepts."""
        if not isinstance(attrs, dict) or set(attrs) != set(self.stateNames):
            raise OptimizerError(f"{self!r} state must have the entries {sorted(self.stateNames)}, got {attrs!r:.200}")
        checkInteger(attrs["t"], "t", OptimizerError, minimum=0)
        checkNumber(attrs["baseLearnRate"], "baseLearnRate", OptimizerError, low=0.0)
        self.checkState(attrs)

    def setAttrDict(self, attrs):
        """Restore a state from ``getAttrDict()`` and set the optimizer's rate to the one it had then; a wrong
        set of names or a bad value raises and changes nothing."""
        self.checkAttrDict(attrs)
        for name, value in attrs.items():
            setattr(self, name, value)
        self.setRate(self.currentRate())

    def checkState(self, attrs):
        """Checks of a subclass's own state entries (none by default)."""

    def currentRate(self):
        return self.rate(self.t)


def cosineBetween(start, end, fraction):
    """``end + (start - end) (1 + cos(π fraction)) / 2``: ``start`` at fraction 0, ``end`` at 1."""
    return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2
