"""GroupNorm: normalisation over groups of maps, per sample (no batch statistics, so it behaves the same in
trainMode and evalMode and at any batch size). The C maps of (N, C, ...) data are split into G equal groups;
per sample n and group g, over the group's maps and every spatial position,

    x̂ = (x - mean) / sqrt(var + epsilon),   y[n, c] = scale[c] x̂[n, c] + bias[c]   (biased var).

Backward, with ĝ = scale ⊙ grad and means over the same (n, g) sets: ∂x = (ĝ - mean(ĝ) - x̂ mean(ĝ x̂)) /
sqrt(var + epsilon); ∂scale += Σ_{n, positions} grad x̂; ∂bias += Σ_{n, positions} grad. Statistics and
sums are computed in float32 at least (float16 sums overflow past 65504).
"""

import numpy

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.variable import Variable


class GroupNorm(Module):
    """``GroupNorm(groups, maps, epsilon=1e-5)`` on (N, maps, ...) data; Variables ``scale`` (ones) and ``bias``
    (zeros) of shape (maps,), as PyTorch's GroupNorm(groups, maps)."""

    cacheAttrs = ("inData", "data", "xhat", "invStd")
    ndim = None  # any number of dimensions >= 2; InstanceNorm2D asks for 4

    def __init__(self, groups, maps, epsilon=1e-5, dtype=numpy.float32, name=None):
        super().__init__(name)
        if min(groups, maps) < 1 or maps % groups or epsilon <= 0:
            raise ModuleError(f"{type(self).__name__} needs maps a positive multiple of groups and epsilon > 0, got "
                              f"groups={groups}, maps={maps}, epsilon={epsilon}")
        self.groups, self.maps, self.epsilon = groups, maps, epsilon
        self.setVar("scale", Variable(xp.ones((maps,), dtype=dtype), name="scale"))
        self.setVar("bias", Variable(xp.zeros((maps,), dtype=dtype), name="bias"))
        self.xhat = self.invStd = None

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=self.ndim, dtype=self.scale.dtype)
        if data.ndim < 2 or data.shape[1] != self.maps:
            raise ModuleError(f"{self!r}: input must have shape (batch, {self.maps}, ...), got {data.shape}")

    def _perMap(self, array):
        """A (maps,) array shaped to broadcast against the data."""
        return array.reshape(1, self.maps, *(1,) * (self.inData.ndim - 2))

    def updData(self, data):
        acc = numpy.promote_types(data.dtype, numpy.float32)
        grouped = data.reshape(data.shape[0], self.groups, -1).astype(acc, copy=False)
        mean = grouped.mean(axis=2, keepdims=True)
        self.invStd = 1 / xp.sqrt(grouped.var(axis=2, keepdims=True) + self.epsilon)
        self.xhat = ((grouped - mean) * self.invStd).reshape(data.shape)
        return (self.xhat * self._perMap(self.scale) + self._perMap(self.bias)).astype(data.dtype)

    def updGrad(self, grad):
        acc = self.xhat.dtype
        scaled = (grad.astype(acc, copy=False) * self._perMap(self.scale)).reshape(grad.shape[0], self.groups, -1)
        xhat = self.xhat.reshape(scaled.shape)
        ingrad = scaled - scaled.mean(axis=2, keepdims=True) - xhat * (scaled * xhat).mean(axis=2, keepdims=True)
        return (ingrad * self.invStd).reshape(grad.shape).astype(grad.dtype)

    def accGradParams(self, grad):
        axes = (0, *range(2, grad.ndim))
        acc = self.xhat.dtype
        self.vars["scale"].grad += (grad * self.xhat).sum(axis=axes, dtype=acc).astype(grad.dtype)
        self.vars["bias"].grad += grad.sum(axis=axes, dtype=acc).astype(grad.dtype)
