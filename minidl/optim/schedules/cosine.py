"""CosineSchedule: linear warmup from 0, then cosine annealing to ``minLearnRate``."""

from minidl.errors import OptimizerError
from minidl.optim.schedules.schedule import Schedule, cosineBetween
from minidl.validation import checkInteger, checkNumber


class CosineSchedule(Schedule):
    """``rate(t) = base · t / warmup`` for ``t < warmup``, then
    ``minLearnRate + (base − minLearnRate) (1 + cos(π (t − warmup) / (total − warmup))) / 2``.

    Without warmup this is PyTorch's CosineAnnealingLR(T_max=total, eta_min=minLearnRate) in its closed form
    (which continues as a cosine past ``total``, as PyTorch's does); with warmup it is the LambdaLR of the
    usual warmup-cosine recipe (Hugging Face's ``get_cosine_schedule_with_warmup`` when minLearnRate = 0).
    """

    planNames = ("total", "warmup", "minLearnRate")

    def __init__(self, optimizer, total, minLearnRate=0.0, warmup=0):
        self.total = checkInteger(total, "total", OptimizerError, minimum=1)
        self.warmup = checkInteger(warmup, "warmup", OptimizerError, minimum=0)
        if self.warmup >= self.total:
            raise OptimizerError(f"warmup must be shorter than total, got warmup={warmup} and total={total}")
        self.minLearnRate = checkNumber(minLearnRate, "minLearnRate", OptimizerError, low=0.0)
        super().__init__(optimizer)
        self.setRate(self.rate(0))

    def rate(self, t):
        if t < self.warmup:
            return self.baseLearnRate * t / self.warmup
        fraction = (t - self.warmup) / (self.total - self.warmup)
        return cosineBetween(self.baseLearnRate, self.minLearnRate, fraction)
