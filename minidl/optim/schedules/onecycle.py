"""OneCycleSchedule: up from ``maxLearnRate / 25`` to ``maxLearnRate``, then down to a 10⁴ times smaller rate."""

from minidl.errors import OptimizerError
from minidl.optim.schedules.schedule import Schedule, cosineBetween
from minidl.validation import checkInteger, checkNumber


class OneCycleSchedule(Schedule):
    """PyTorch's OneCycleLR with its defaults (two phases, cosine annealing, no momentum cycling):
    ``initial = maxLearnRate / divFactor``, ``final = initial / finalDivFactor``; over steps 0 .. p = pctStart ·
    total − 1 the rate goes from initial to maxLearnRate, over p .. total − 1 from maxLearnRate to final, each
    as ``cosineBetween``. It sets the optimizer's starting rate itself and has ``total`` steps: a step past
    them is an OptimizerError.
    """

    planNames = ("maxLearnRate", "total", "pctStart", "divFactor", "finalDivFactor")

    def __init__(self, optimizer, maxLearnRate, total, pctStart=0.3, divFactor=25.0, finalDivFactor=1e4):
        self.maxLearnRate = checkNumber(maxLearnRate, "maxLearnRate", OptimizerError, low=0.0)
        self.total = checkInteger(total, "total", OptimizerError, minimum=1)
        self.pctStart = checkNumber(pctStart, "pctStart", OptimizerError, low=0.0, high=1.0, lowOpen=True,
                                    highOpen=True)
        self.divFactor = checkNumber(divFactor, "divFactor", OptimizerError, low=0.0, lowOpen=True)
        self.finalDivFactor = checkNumber(finalDivFactor, "finalDivFactor", OptimizerError, low=0.0, lowOpen=True)
        self.peakStep = self.pctStart * self.total - 1
        if not 0 < self.peakStep < self.total - 1:
            raise OptimizerError(f"pctStart {pctStart} of total {total} steps leaves a phase without steps")
        super().__init__(optimizer)
        self.setRate(self.rate(0))

    def rate(self, t):
        initial = self.maxLearnRate / self.divFactor
        if t <= self.peakStep:
            return cosineBetween(initial, self.maxLearnRate, t / self.peakStep)
        final = initial / self.finalDivFactor
        return cosineBetween(self.maxLearnRate, final, (t - self.peakStep) / (self.total - 1 - self.peakStep))

    def step(self):
        if self.t + 1 > self.total:
            raise OptimizerError(f"{self!r} has {self.total} steps; step {self.t + 1} is past its end")
        super().step()

    def checkState(self, attrs):
        checkInteger(attrs["t"], "t", OptimizerError, minimum=0)
        if attrs["t"] > self.total:
            raise OptimizerError(f"t must be at most total = {self.total}, got {attrs['t']}")
