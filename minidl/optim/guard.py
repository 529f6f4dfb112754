"""The non-finite guard: after the hooks, before the rule, each flat gradient buffer is reduced once
(``allFinite``); a NaN or inf raises an OptimizerError naming the first Variable that holds one, or skips the step
(counted in ``skippedSteps``), before anything changes. A dynamic loss scaler always skips and backs off."""

import math

import numpy

from minidl.backend import xp
from minidl.errors import OptimizerError
from minidl.optim.rule import Count

NON_FINITE = ("raise", "skip", "off")
HALF_EXPONENT = 0x7C00  # the exponent bits of a float16; all of them set: inf or NaN


def allFinite(array):
    """True when no entry of the float ``array`` is NaN or ±inf, exactly, in one pass over it.

    float32 and float64: the sum of squares Σ x² in the array's own type, a BLAS dot product with no conversion
    pass (NaN or +inf as soon as one entry is NaN or ±inf; finite entries above 1.8e19 in float32 can overflow it
    too, so a non-finite result is confirmed by ``isfinite``). float16: the largest exponent field of the bits,
    read as integers (a float16 sum would overflow at 65504, and converting every element is slow on the CPU).
    """
    flat = array.reshape(-1)
    if flat.size == 0:
        return True
    if flat.dtype == numpy.float16:
        return int((flat.view(numpy.uint16) & HALF_EXPONENT).max()) != HALF_EXPONENT
    return math.isfinite(float(xp.dot(flat, flat))) or bool(xp.isfinite(flat).all())


class NonFiniteGuard:
    """The guard's part of an Optimizer: ``nonFinite``, ``skippedSteps`` and the check itself, over ``groups``."""

    skippedSteps = Count('The number of steps skipped for non-finite gradients (``nonFinite = "skip"``, or a '
                         "dynamic loss scaler).")

    @property
    def nonFinite(self):
        """What ``update`` does when a gradient holds NaN or ±inf after the hooks: "raise" (OptimizerError naming
        the first such Variable, nothing changed), "skip" (parameters and state untouched, ``skippedSteps``
        counted) or "off" (no check). A dynamic loss scaler always skips and backs off instead."""
        return self._nonFinite

    @nonFinite.setter
    def nonFinite(self, mode):
        if mode not in NON_FINITE:
            raise OptimizerError(f"nonFinite must be one of {NON_FINITE}, got {mode!r}")
        self._nonFinite = mode

    def gradientsFinite(self):
        """True when every gradient entry is finite: one reduction per flat gradient buffer (``allFinite``)."""
        return all(allFinite(group.grad) for group in self.groups)

    def firstNonFinite(self):
        """The name of the first Variable whose gradient holds NaN or ±inf, or None."""
        for group in self.groups:
            for span in group.spans:
                if not bool(xp.isfinite(group.grad.reshape(-1)[span.start:span.stop]).all()):
                    return span.name
        return None

    def _guard(self):
        """Whether the step may go on, after the non-finite check; a skipped step is counted (and backs the
        dynamic loss scale off), an error names the first Variable with a non-finite gradient."""
        dynamic = self.lossScaler is not None and self.lossScaler.dynamic
        if (self.nonFinite == "off" and not dynamic) or self.gradientsFinite():
            return True
        if dynamic or self.nonFinite == "skip":
            self.skippedSteps += 1
            if dynamic:
                self.lossScaler.backoff()
            return False
        raise OptimizerError(
            f"Variable {self.firstNonFinite()!r} has a non-finite gradient (NaN or inf) at step {self.t + 1}: "
            "nothing was changed (a diverging run: lower the learning rate, clip the gradients, or set "
            "optimizer.nonFinite = 'skip')"
        )
