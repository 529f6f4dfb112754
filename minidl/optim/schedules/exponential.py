"""ExponentialSchedule: the rate times ``gamma`` at every step."""

from minidl.optim.optimizer import checkHyper
from minidl.optim.schedules.schedule import Schedule


class ExponentialSchedule(Schedule):
    """``rate(t) = base · gamma^t`` (PyTorch's ExponentialLR)."""

    planNames = ("gamma",)

    def __init__(self, optimizer, gamma):
        self.gamma = checkHyper("gamma", gamma)
        super().__init__(optimizer)
        self.setRate(self.rate(0))

    def rate(self, t):
        return self.baseLearnRate * self.gamma ** t
