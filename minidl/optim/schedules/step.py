"""StepSchedule and MultiStepSchedule: the rate times ``gamma`` every ``stepSize`` steps, or at each milestone."""

import bisect

from minidl.errors import OptimizerError
from minidl.optim.schedules.schedule import Schedule
from minidl.validation import checkInteger, checkNumber


class StepSchedule(Schedule):
    """``rate(t) = base · gamma^⌊t / stepSize⌋`` (PyTorch's StepLR)."""

    planNames = ("stepSize", "gamma")

    def __init__(self, optimizer, stepSize, gamma=0.1):
        self.stepSize = checkInteger(stepSize, "stepSize", OptimizerError, minimum=1)
        self.gamma = checkNumber(gamma, "gamma", OptimizerError, low=0.0)
        super().__init__(optimizer)
        self.setRate(self.rate(0))

    def rate(self, t):
        return self.baseLearnRate * self.gamma ** (t // self.stepSize)


class MultiStepSchedule(Schedule):
    """``rate(t) = base · gamma^(number of milestones <= t)`` (PyTorch's MultiStepLR; a repeated milestone
    counts as often as it is given)."""

    planNames = ("milestones", "gamma")

    def __init__(self, optimizer, milestones, gamma=0.1):
        try:
            values = list(milestones)
        except TypeError:
            raise OptimizerError(f"milestones must be a list of step numbers, got {milestones!r}") from None
        self.milestones = sorted(checkInteger(value, "milestone", OptimizerError, minimum=0) for value in values)
        if not self.milestones:
            raise OptimizerError("milestones must name at least one step")
        self.gamma = checkNumber(gamma, "gamma", OptimizerError, low=0.0)
        super().__init__(optimizer)
        self.setRate(self.rate(0))

    def rate(self, t):
        return self.baseLearnRate * self.gamma ** bisect.bisect_right(self.milestones, t)
