"""Gradient clipping hooks.

    GradientClip(maxNorm):        norm = sqrt(Σ grad²) over every Variable of the model;
                                  grad ← grad · maxNorm / max(norm, maxNorm)
    GradientHardClip(low, high):  grad ← min(max(grad, low), high)

GradientClip (Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks", ICML 2013)
reduces each group's flat gradient once on the device (one reduction per dtype in global state) and hands the
scale to its kernel as a float64 device array: no value travels to the host.
"""

import numpy

from minidl.backend import Elementwise, xp
from minidl.errors import OptimizerError
from minidl.optim.hooks.hook import Hook
from minidl.optim.optimizer import checkHyper


def _scaleNumpy(scale, grad):
    if scale[0] != 1:
        grad *= scale[0]


scaleKer = Elementwise(
    "minidl_grad_scale", inParams="raw float64 scale", outParams="T grad", operation="grad = grad * scale[0]",
    reference=_scaleNumpy,
)


def _hardClipNumpy(low, high, grad):
    numpy.clip(grad, low, high, out=grad)


hardClipKer = Elementwise(
    "minidl_hard_clip",
    inParams="float32 low, float32 high",
    outParams="T grad",
    operation="if (grad < low) grad = low; else if (grad > high) grad = high",
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
        self.maxNorm = checkHyper("maxNorm", maxNorm, lowOpen=True)

    def __call__(self, groups):
        norm = globalNorm([group.grad for group in groups])
        scale = xp.asarray(self.maxNorm / xp.maximum(norm, self.maxNorm), dtype=numpy.float64).reshape(1)
        for group in groups:
            scaleKer(scale, group.grad)


class GradientHardClip(Hook):
    """Clamp every gradient entry into [low, high]."""

    def __init__(self, low, high):
        low, high = checkHyper("low", low, low=-numpy.inf), checkHyper("high", high, low=-numpy.inf)
        if low > high:
            raise OptimizerError(f"GradientHardClip needs low <= high, got low={low}, high={high}")
        self.low, self.high = low, high

    def __call__(self, groups):
        for group in groups:
            hardClipKer(self.low, self.high, group.grad)
