"""ExponentialSchedule: the rate times ``gamma`` at every step."""

from minidl.errors import OptimizerError
from minidl.optim.schedules.schedule import Schedule
from minidl.validation import checkNumber


class ExponentialSchedule(Schedule):
    """``rate(t) = base · gamma^t`` (PyTorch's ExponentialLR)."""

    planNames = ("gamma",)

    def __init__(self, optimizer, gamma):
        self.gamma = checkNumber(gamma, "gamma", OptimizerError, low=0.0)
        super().__init__(optimizer)
        self.setRate(self.rate(0))

    def rate(self, t):
        return self.baseLearnRate * self.gamma ** t
