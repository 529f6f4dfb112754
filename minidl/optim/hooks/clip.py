"""Gradient clipping hooks.

    GradientClip(maxNorm):        norm = sqrt(Σ grad²) over every Variable of the model;
                                  grad ← grad · maxNorm / max(norm, maxNorm)
    GradientHardClip(low, high):  grad ← min(max(grad, low), high)

GradientClip (Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks", ICML 2013)
reduces each group's flat gradient once on the device (one reduction per dtype in global state) and hands the
scale to its kernel as a device array of the compute type: no value travels to the host. The norm is that of the
true gradients (times the groups' ``gradScale``, 1/scale under loss scaling). A non-finite norm leaves the
gradients as they are (scale 1), so that NaN reaches only the entries that hold it and the optimizer's non-finite
guard sees it, instead of a NaN or zero scale written into every gradient. GradientHardClip compares the true
gradient with [low, high]; NaN stays NaN (as in NumPy's clip), for the guard to see.
"""

import numpy

from minidl.backend import Elementwise, scratch, xp
from minidl.errors import OptimizerError
from minidl.optim.hooks.hook import Hook
from minidl.validation import checkNumber


def _scaleNumpy(scale, grad):
    if scale[0] != 1:
        numpy.multiply(grad, scale[0], out=grad, casting="same_kind")


scaleKer = Elementwise(
    "minidl_grad_scale", inParams="raw S scale", outParams="T grad", operation="grad = (T)((S)grad * scale[0])",
    reference=_scaleNumpy,
)


def _hardClipNumpy(gradScale, low, high, grad):
    wide = scratch(grad.shape, gradScale.dtype, "wideGrad")
    numpy.multiply(grad, gradScale[0], out=wide, dtype=wide.dtype)
    below, above = scratch(grad.shape, numpy.bool_, "below"), scratch(grad.shape, numpy.bool_, "above")
    numpy.less(wide, low, out=below)
    numpy.greater(wide, high, out=above)
    grad[below] = low / gradScale[0]
    grad[above] = high / gradScale[0]


hardClipKer = Elementwise(
    "minidl_hard_clip",
    inParams="raw S gradScale, S low, S high",
    outParams="T grad",
    operation="const S value = (S)grad * gradScale[0];"
              "if (value < low) grad = (T)(low / gradScale[0]); else if (value > high) grad = (T)(high / gradScale[0])",
    reference=_hardClipNumpy,
)


def globalNorm(grads):
    """sqrt(Σ grad²) over the arrays, a float64 device scalar (half is widened to float32: its squares overflow)."""
    total = 0.0
    for grad in grads:
        grad = grad.reshape(-1)
        if grad.dtype == numpy.float16:
            grad = grad.astype(numpy.float32)
        total = total + xp.vdot(grad, grad).astype(numpy.float64)
    return xp.sqrt(total)


class GradientClip(Hook):
    """Rescale all gradients together so that their global L2 norm is at most maxNorm (direction kept)."""

    def __init__(self, maxNorm):
        self.maxNorm = checkNumber(maxNorm, "maxNorm", OptimizerError, low=0.0, lowOpen=True)

    def __call__(self, groups):
        norm = xp.multiply(globalNorm([group.grad for group in groups]), groups[0].gradScale, dtype=numpy.float64)
        scale = xp.where(xp.isfinite(norm), self.maxNorm / xp.maximum(norm, self.maxNorm), 1.0).reshape(1)
        for group in groups:
            scaleKer(scale.astype(group.gradScale.dtype), group.grad)


class GradientHardClip(Hook):
    """Clamp every gradient entry into [low, high]."""

    def __init__(self, low, high):
        low, high = checkNumber(low, "low", OptimizerError), checkNumber(high, "high", OptimizerError)
        if low > high:
            raise OptimizerError(f"GradientHardClip needs low <= high, got low={low}, high={high}")
        self.low, self.high = low, high

    def __call__(self, groups):
        for group in groups:
            hardClipKer(group.gradScale, self.low, self.high, group.grad)
