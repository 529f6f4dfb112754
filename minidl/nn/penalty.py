"""Penalty: an activity penalty on the data that passes through. The forward pass is the identity; the
backward pass adds the gradient of a penalty on the activations x of a batch of N samples,

    l1: penalty = weight / N · Σ |x|,        ∂x = grad + weight / N · sign(x)   (sign(0) = 0),
    l2: penalty = weight / (2 N) · Σ x²,     ∂x = grad + weight / N · x,

so the network is trained on error + penalty. ``penalty()`` gives the term of the last forward pass (it reads
the device, so call it when the value is wanted, not every step). NaN in x gives NaN in ∂x.
"""

import numpy

from minidl.backend import Elementwise, xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray, checkNotEmpty
from minidl.validation import checkNumber

MODES = ("l1", "l2")


def _penaltyGradNumpy(grad, x, scale, l1, ingrad):
    if l1:
        direction = numpy.where(x > 0, 1, numpy.where(x < 0, -1, x * 0)).astype(x.dtype)  # ±0 and NaN kept
    else:
        direction = x
    numpy.multiply(direction, scale, out=ingrad)
    ingrad += grad


penaltyGradKer = Elementwise(
    "minidl_penalty_grad", "T grad, T x, T scale, int32 l1", "T ingrad",
    "const T direction = l1 ? (x > (T)0 ? (T)1 : (x < (T)0 ? (T)(-1) : (T)(x * (T)0))) : x; "
    "ingrad = grad + (T)(direction * scale)",
    _penaltyGradNumpy,
)


class Penalty(Module):
    """``Penalty(mode="l1", weight=1e-2)``: the identity forward, an L1 or L2 activity penalty backward."""

    def __init__(self, mode="l1", weight=1e-2, name=None):
        super().__init__(name)
        if mode not in MODES:
            raise ModuleError(f"Penalty mode must be 'l1' or 'l2', got {mode!r}")
        self.mode = mode
        self.weight = checkNumber(weight, "Penalty weight", low=0)

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        if not numpy.issubdtype(data.dtype, numpy.floating) or data.ndim == 0:
            raise ModuleError(f"{self!r}: input must be floating with a batch axis, got {data.dtype} {data.shape}")
        checkNotEmpty(self, data)  # its penalty is divided by the samples

    def updData(self, data):
        return data

    def updGrad(self, grad):
        grad, x = xp.ascontiguousarray(grad), xp.ascontiguousarray(self.inData)
        return penaltyGradKer(grad, x, self.weight / x.shape[0], int(self.mode == "l1"), xp.empty_like(grad))

    def penalty(self):
        """The penalty of the last forward pass's data, a float (in the data's dtype, at least float32)."""
        if self.inData is None:
            raise ModuleError(f"{self!r}: penalty() called before a forward pass")
        x = self.inData.astype(numpy.promote_types(self.inData.dtype, numpy.float32))
        total = xp.abs(x).sum() if self.mode == "l1" else (x * x).sum() / 2
        return float(total) * self.weight / x.shape[0]
