"""Learning-rate schedules matching PyTorch's schedulers step for step: each owns one optimizer's rate."""

from minidl.optim.schedules.cosine import CosineSchedule
from minidl.optim.schedules.exponential import ExponentialSchedule
from minidl.optim.schedules.onecycle import OneCycleSchedule
from minidl.optim.schedules.plateau import PlateauSchedule
from minidl.optim.schedules.schedule import Schedule, rateName
from minidl.optim.schedules.step import MultiStepSchedule, StepSchedule

__all__ = [
    "CosineSchedule", "ExponentialSchedule", "MultiStepSchedule", "OneCycleSchedule", "PlateauSchedule", "Schedule",
    "StepSchedule", "rateName",
]
