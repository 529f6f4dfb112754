"""Schedule: the base of every learning-rate schedule.

A schedule owns one optimizer's rate (``learnRate``, or ``alpha`` for Adam-like optimizers): it reads the
base rate once, at construction, sets the rate of step 0 there too (as PyTorch's schedulers do in their
constructor), and sets the rate of step t after its t-th ``step()``. ``getAttrDict()``/``setAttrDict()`` hold
everything a resumed run needs, so a checkpoint restores the schedule exactly; they hold its plan too
(``planNames``: ``total`` and ``warmup`` of a cosine, ``stepSize`` and ``gamma`` of a step schedule...), and a
state of another plan is refused: a resumed schedule keeps its horizon.
"""

import math

from minidl.errors import OptimizerError
from minidl.optim.optimizer import Optimizer
from minidl.validation import checkInteger, checkNumber


def rateName(optimizer):
    """The name of the optimizer's learning-rate attribute: ``alpha`` for Adam-like ones (whose hyperparameters name
    the rate so), else ``learnRate`` (RMSPropGraves's ``alpha`` is an averaging factor, beside its ``learnRate``)."""
    if not isinstance(optimizer, Optimizer):
        raise OptimizerError(f"a schedule needs an Optimizer, got {type(optimizer).__name__}")
    names = optimizer.hyperNames
    return "alpha" if "alpha" in names and "learnRate" not in names else "learnRate"


class Schedule:
    """``step()`` after each epoch (or step); the optimizer's rate is then ``rate(t)`` for the t steps taken."""

    needsMetric = False
    stateNames = ("t", "baseLearnRate")
    planNames = ()  # the settings of the plan (its horizon): in the state, and a restored state must have them

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
        self.setRate(self.rateAfter(self.t + 1))
        self.t += 1

    def rateAfter(self, t):
        """``rate(t)``; OptimizerError where it is past the floats (an ExponentialSchedule growing for long)."""
        try:
            return self.rate(t)
        except OverflowError:
            raise OptimizerError(f"{self!r}: the rate after {t} steps is too large for a float") from None

    def getAttrDict(self):
        """The schedule's state by name (numbers, JSON-able), its plan included: restore it with ``setAttrDict``."""
        return {name: getattr(self, name) for name in (*self.stateNames, *self.planNames)}

    def checkAttrDict(self, attrs):
        """OptimizerError unless ``attrs`` is a state ``setAttrDict`` accepts: a state of the same plan (a resumed
        schedule keeps its horizon, as PyTorch's schedulers restore theirs)."""
        names = {*self.stateNames, *self.planNames}
        if not isinstance(attrs, dict) or set(attrs) != names:
            raise OptimizerError(f"{self!r} state must have the entries {sorted(names)}, got {attrs!r:.200}")
        checkInteger(attrs["t"], "t", OptimizerError, minimum=0)
        checkNumber(attrs["baseLearnRate"], "baseLearnRate", OptimizerError, low=0.0)
        for name in self.planNames:
            if attrs[name] != getattr(self, name):
                raise OptimizerError(f"{self!r} state was planned with {name}={attrs[name]!r:.100}, this schedule "
                                     f"has {name}={getattr(self, name)!r:.100}: a resumed schedule keeps its plan; "
                                     "build it with the settings it was saved with")
        self.checkState(attrs)

    def setAttrDict(self, attrs):
        """Restore a state from ``getAttrDict()`` and set the optimizer's rate to the one it had then; a wrong
        set of names or a bad value raises and changes nothing."""
        self.checkAttrDict(attrs)
        previous = self.getAttrDict()
        for name, value in attrs.items():
            setattr(self, name, value)
        try:
            self.setRate(self.currentRate())
        except OptimizerError:
            for name, value in previous.items():
                setattr(self, name, value)
            raise

    def checkState(self, attrs):
        """Checks of a subclass's own state entries (none by default)."""

    def currentRate(self):
        return self.rateAfter(self.t)


def cosineBetween(start, end, fraction):
    """``end + (start - end) (1 + cos(π fraction)) / 2``: ``start`` at fraction 0, ``end`` at 1."""
    return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2
