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

The scale and the count of good steps live on the device (``state = [scale, goodSteps]``, float64), and a dynamic
scaler's update is one launch of one thread (``scalerKer``) after each step's update, reading the non-finite guard's
flag: no host sync per step. ``scale`` and ``goodSteps`` read them when asked (a copy of two numbers).
"""

import numpy

from minidl.backend import Elementwise, toHost, xp
from minidl.errors import OptimizerError
from minidl.validation import checkInteger, checkNumber

MIN_SCALE, MAX_SCALE = 1.0, 2.0**24


def _scalerNumpy(skip, growthFactor, backoffFactor, growthInterval, state):
    if skip[0]:
        state[:] = max(state[0] * backoffFactor, MIN_SCALE), 0
        return
    state[1] += 1
    if state[1] >= growthInterval:
        state[:] = min(state[0] * growthFactor, MAX_SCALE), 0


scalerKer = Elementwise(
    "minidl_loss_scale_update",
    "raw int32 skip, float64 growthFactor, float64 backoffFactor, int64 growthInterval",
    "raw float64 state",
    f"if (skip[0]) {{ const double s = state[0] * backoffFactor; state[0] = s < {MIN_SCALE!r} ? {MIN_SCALE!r} : s; "
    f"state[1] = 0; }} else {{ state[1] += 1; if (state[1] >= (double)growthInterval) {{ "
    f"const double s = state[0] * growthFactor; state[0] = s > {MAX_SCALE!r} ? {MAX_SCALE!r} : s; state[1] = 0; }} }}",
    _scalerNumpy,
)


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
        self.state = xp.zeros(2, dtype=numpy.float64)
        self.state[0] = self.initialScale

    @property
    def scale(self):
        """The current scale (read from the device)."""
        return float(toHost(self.state)[0])

    @property
    def goodSteps(self):
        """The good steps counted since the scale last changed (read from the device)."""
        return int(toHost(self.state)[1])

    def scaleGrad(self, grad):
        """The cost gradient times the scale, a new array of its dtype (give it to ``backward``), multiplied in
        float32 at least (the scale may exceed float16's 65504; the product overflows only where it must)."""
        wide = numpy.promote_types(grad.dtype, numpy.float32)
        # state[:1], a view, not state[0]: on the CPU that is a host number, which a captured step would keep
        return xp.multiply(grad.astype(wide), self.state[:1], dtype=wide).astype(grad.dtype, copy=False)

    def fillUnscale(self, gradScale):
        """Write 1 / scale into the one-element device array ``gradScale`` (in its dtype), on the device."""
        xp.divide(1, self.state[:1], out=gradScale)

    def update(self, skip):
        """After a step, on the device (a dynamic scaler only): where ``skip[0]`` (the guard's flag) is set the
        step overflowed: shrink the scale and start counting again; else count a good step, and grow the scale
        after ``growthInterval`` of them in a row."""
        if self.dynamic:
            scalerKer(skip, self.growthFactor, self.backoffFactor, self.growthInterval, self.state, size=1)

    def backoff(self):
        """A step overflowed and was skipped: shrink the scale and start counting again (even when static)."""
        scalerKer(xp.ones(1, dtype=numpy.int32), self.growthFactor, self.backoffFactor, self.growthInterval,
                  self.state, size=1)

    def getAttrDict(self):
        """The state to keep in a checkpoint: ``lossScale`` and ``lossScaleGoodSteps`` (one read of the device)."""
        scale, goodSteps = toHost(self.state)
        return {"lossScale": float(scale), "lossScaleGoodSteps": int(goodSteps)}

    def setAttr(self, name, value):
        """Restore one entry of ``getAttrDict()``; OptimizerError for a value no run can reach."""
        if name == "lossScale":
            self.state[0] = checkNumber(value, "lossScale", OptimizerError, low=MIN_SCALE, high=MAX_SCALE)
        elif name == "lossScaleGoodSteps":
            self.state[1] = checkInteger(value, "lossScaleGoodSteps", OptimizerError, minimum=0,
                                         maximum=self.growthInterval - 1)
        else:
            raise OptimizerError(f"{self!r} has no attribute {name!r}")
