"""GroupNorm: normalisation over groups of maps, per sample (no batch statistics, so it behaves the same in
trainMode and evalMode and at any batch size). The C maps of (N, C, ...) data are split into G equal groups;
per sample n and group g, over the group's maps and every spatial position,

    x̂ = (x - mean) / sqrt(var + epsilon),   y[n, c] = scale[c] x̂[n, c] + bias[c]   (biased var).

Backward, with ĝ = scale ⊙ grad and means over the same (n, g) sets: ∂x = (ĝ - mean(ĝ) - x̂ mean(ĝ x̂)) /
sqrt(var + epsilon); ∂scale += Σ_{n, positions} grad x̂; ∂bias += Σ_{n, positions} grad. Statistics and
sums are computed in float32 at least (float16 sums overflow past 65504). The statistics are LayerNorm's two
Reductions over the (n, g) rows of the data (a group's maps are neighbours): the mean, then the variance about it.
The other kernels are BatchNorm's, on the (n, c) planes: per-plane sums of the gradient (``mapTotals``, added per
group), the scale and shift, and a gradient kernel of its own.
"""

import numpy

from minidl.backend import Elementwise, xp
from minidl.errors import ModuleError
from minidl.nn.batchnorm import elements, mapTotals, scaleShiftKer, span
from minidl.nn.layernorm import invstdKer, meanKer
from minidl.nn.module import Module, checkArray, checkNotEmpty
from minidl.validation import checkNumber, checkSize
from minidl.variable import Variable


def _gradNumpy(grad, x, mean, a, b, d, spatial, ingrad):
    planes = (-1, 1)
    out = ingrad.reshape(-1, spatial)
    numpy.subtract(x.reshape(-1, spatial), mean.reshape(planes), out=out)
    out *= b.reshape(planes)
    numpy.subtract(grad.reshape(-1, spatial) * a.reshape(planes), out, out=out)
    out -= d.reshape(planes)


# ∂x over (n, c) planes of `spatial` values (size: N C), with the plane's coefficients a = invstd scale[c],
# b = invstd² mean(ĝ x̂), d = invstd mean(ĝ) of its (n, g) group: ∂x = (a grad - b (x - mean)) - d.
gradKer = Elementwise(
    "minidl_groupnorm_grad",
    "raw T grad, raw T x, raw T mean, raw T a, raw T b, raw T d, int32 spatial",
    "raw T ingrad",
    "const T m = mean[i], ai = a[i], bi = b[i], di = d[i]; "
    "const T* __restrict__ g = &grad[i * spatial]; const T* __restrict__ v = &x[i * spatial]; "
    "T* __restrict__ out = &ingrad[i * spatial]; "
    "for (int s = 0; s < spatial; ++s) out[s] = (ai * g[s] - bi * (v[s] - m)) - di",
    _gradNumpy,
    grain="2 * spatial",
)


class GroupNorm(Module):
    """``GroupNorm(groups, maps, epsilon=1e-5)`` on (N, maps, ...) data; Variables ``scale`` (ones) and ``bias``
    (zeros) of shape (maps,), as PyTorch's GroupNorm(groups, maps)."""

    cacheAttrs = ("inData", "data", "mean", "invStd")
    sharedInBackward = ("planeSums",)  # computed once per backward, for ∂x and the parameters
    ndim = None  # any number of dimensions >= 2; InstanceNorm2D asks for 4

    def __init__(self, groups, maps, epsilon=1e-5, dtype=numpy.float32, name=None):
        super().__init__(name)
        kind = type(self).__name__
        groups, maps = checkSize(groups, f"{kind} groups"), checkSize(maps, f"{kind} maps")
        epsilon = checkNumber(epsilon, f"{kind} epsilon", low=0, lowOpen=True)
        if maps % groups:
            raise ModuleError(f"{kind} needs maps a positive multiple of groups, got groups={groups}, maps={maps}")
        self.groups, self.maps, self.epsilon = groups, maps, epsilon
        self.setVar("scale", Variable(xp.ones((maps,), dtype=dtype), name="scale"))
        self.setVar("bias", Variable(xp.zeros((maps,), dtype=dtype), name="bias"))
        self.mean = self.invStd = None  # (N, groups), in float32 at least
        self.planeSums = None

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=self.ndim, dtype=self.scale.dtype)
        if data.ndim < 2 or data.shape[1] != self.maps:
            raise ModuleError(f"{self!r}: input must have shape (batch, {self.maps}, ...), got {data.shape}")
        checkNotEmpty(self, data)

    def _perGroup(self, perPlane, batch):
        """(N maps,) per-plane values summed over each group's maps: (N, groups)."""
        return perPlane.reshape(batch, self.groups, -1).sum(axis=2)

    def _perPlane(self, perGroup):
        """(N, groups) values repeated for each map of the group: (N maps,)."""
        return xp.repeat(perGroup, self.maps // self.groups, axis=1).ravel()

    def updData(self, data):
        data, batch = xp.ascontiguousarray(data), data.shape[0]
        acc = numpy.promote_types(data.dtype, numpy.float32)  # float16 sums overflow past 65504
        rows = data.reshape(batch * self.groups, -1)  # a group's maps are neighbours: one row per (n, g)
        count = rows.shape[1]
        self.mean = meanKer(rows, count, xp.empty((rows.shape[0], 1), acc), axis=1, keepdims=True)
        self.invStd = invstdKer(rows, self.mean, self.epsilon, count, xp.empty((rows.shape[0], 1), acc), axis=1,
                                keepdims=True).reshape(batch, self.groups)
        self.mean = self.mean.reshape(batch, self.groups)
        means = self._perPlane(self.mean)
        planes = batch * self.maps
        spatial = data.size // planes
        values = span(spatial)
        return scaleShiftKer(data, means.astype(data.dtype),
                             self._perPlane(self.invStd).astype(data.dtype), xp.tile(self.scale, batch),
                             xp.tile(self.bias, batch), planes, spatial, values, xp.empty_like(data),
                             size=elements(planes, spatial, values))

    def _gradSums(self, grad):
        """Σ grad and Σ grad (x - mean) per (n, c) plane, in float32 at least: BatchNorm's ``mapTotals`` over
        the data seen as one image of N maps planes."""
        if self.planeSums is None:
            planes = (1, grad.shape[0] * self.maps, -1)
            self.planeSums = mapTotals(xp.ascontiguousarray(grad).reshape(planes),
                                       xp.ascontiguousarray(self.inData).reshape(planes), self._perPlane(self.mean),
                                       shifted=False)
        return self.planeSums

    def updGrad(self, grad):
        batch, acc = grad.shape[0], self.mean.dtype
        sumGrad, sumGradCentred = self._gradSums(grad)
        scale = xp.tile(self.scale.astype(acc), batch)
        count = grad.size // (batch * self.groups)
        meanScaled = self._perGroup(sumGrad * scale, batch) / count  # mean(ĝ), ĝ = scale grad
        meanScaledXhat = self._perGroup(sumGradCentred * scale, batch) * self.invStd / count  # mean(ĝ x̂)
        invStd = self._perPlane(self.invStd)
        coefficients = (invStd * scale, invStd * invStd * self._perPlane(meanScaledXhat),
                        invStd * self._perPlane(meanScaled))
        grad, planes = xp.ascontiguousarray(grad), batch * self.maps
        return gradKer(grad, xp.ascontiguousarray(self.inData), self._perPlane(self.mean).astype(grad.dtype),
                       *(c.astype(grad.dtype) for c in coefficients), grad.size // planes, xp.empty_like(grad),
                       size=planes)

    def accGradParams(self, grad):
        sumGrad, sumGradCentred = self._gradSums(grad)
        batch = grad.shape[0]
        gradScale = (sumGradCentred * self._perPlane(self.invStd)).reshape(batch, self.maps).sum(axis=0)
        self.vars["scale"].grad += gradScale.astype(grad.dtype)
        self.vars["bias"].grad += sumGrad.reshape(batch, self.maps).sum(axis=0).astype(grad.dtype)
