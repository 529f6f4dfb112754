"""LossScaler: static and dynamic loss scaling for float16 training (Micikevicius et al., "Mixed precision
training", ICLR 2018, section 3.2).

Small gradients flush to zero in float16 (below 6e-8). Multiplying the cost gradient by ``scale`` before backward
lifts them into range; the optimizer's update kernel multiplies by 1/scale as it reads them, so the step is that
of the true gradient. Give it to ``optimizer.setupOn(net, ..., lossScaler=scaler)`` and multiply the cost's
gradient with ``scaler.scaleGrad(grad)`` (the Trainer does both ends itself).

Static: the scale never changes; a non-finite gradient is handled by the optimizer's ``nonFinite`` guard.
Dynamic (``dynamic=True``): a step whose gradients hold inf or NaN (the optimizer's non-finite check) is skipped,
nothing changed but ``skippedSteps``, and the scale multiplied by ``backoffFactor``; after ``growthInterval``
steps in a row without one, it is multiplied by ``growthFactor``. The scale stays within [1, 2**24].
"""

import numpy

from minidl.errors import OptimizerError
from minidl.validation import checkInteger, checkNumber

MIN_SCALE, MAX_SCALE = 1.0, 2.0**24


class LossScaler:
    """A loss scale, fixed or adapted to overflows; its state is ``getAttrDict()`` (kept in checkpoints)."""

    def __init__(self, scale=2.0**15, dynamic=True, growthFactor=2.0, backoffFactor=0.5, growthInterval=2000):
        self.initialScale = checkNumber(scale, "scale", OptimizerError, low=MIN_SCALE, high=MAX_SCALE)
        if not isinstance(dynamic, bool):
            raise OptimizerError(f"dynamic must be True or False, got {dynamic!r}")
        self.dynamic = dynamic
        self.growthFactor = checkNumber(growthFactor, "growthFactor", OptimizerError, low=1.0)
        self.backoffFactor = checkNumber(backoffFactor, "backoffFactor", OptimizerError, low=0.0, high=1.0,
                                         lowOpen=True, highOpen=True)
        self.growthInterval = checkInteger(growthInterval, "growthInterval", OptimizerError, minimum=1)
        self.reset()

    def __repr__(self):
        kind = "dynamic" if self.dynamic else "static"
        return f"LossScaler({kind}, scale={self.scale:g})"

    def reset(self):
        """Back to the initial scale, no good steps counted (``setupOn`` calls it)."""
        self.scale, self.goodSteps = self.initialScale, 0

    def scaleGrad(self, grad):
        """The cost gradient times the scale, a new array of its dtype (give it to ``backward``), multiplied in
        float32 at least (the scale may exceed float16's 65504; the product overflows only where it must)."""
        wide = numpy.promote_types(grad.dtype, numpy.float32)
        return (grad.astype(wide) * wide.type(self.scale)).astype(grad.dtype, copy=False)

    def stepped(self):
        """A step was taken: count it, and grow the scale after ``growthInterval`` of them in a row."""
        if not self.dynamic:
            return
        self.goodSteps += 1
        if self.goodSteps >= self.growthInterval:
            self.scale, self.goodSteps = min(self.scale * self.growthFactor, MAX_SCALE), 0

    def backoff(self):
        """A step overflowed and was skipped: shrink the scale and start counting again."""
        self.scale, self.goodSteps = max(self.scale * self.backoffFactor, MIN_SCALE), 0

    def getAttrDict(self):
        """The state to keep in a checkpoint: ``lossScale`` and ``lossScaleGoodSteps``."""
        return {"lossScale": self.scale, "lossScaleGoodSteps": self.goodSteps}

    def setAttr(self, name, value):
        """Restore one entry of ``getAttrDict()``; OptimizerError for a value no run can reach."""
        if name == "lossScale":
            self.scale = checkNumber(value, "lossScale", OptimizerError, low=MIN_SCALE, high=MAX_SCALE)
        elif name == "lossScaleGoodSteps":
            self.goodSteps = checkInteger(value, "lossScaleGoodSteps", OptimizerError, minimum=0,
                                          maximum=self.growthInterval - 1)
        else:
            raise OptimizerError(f"{self!r} has no attribute {name!r}")
