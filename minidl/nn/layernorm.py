"""LayerNorm over the last axis, per row x of ``size`` features (Ba, Kiros & Hinton 2016):

    y = (x - mean) / sqrt(var + epsilon) · scale + bias          (var: the biased variance of the row)
    ∂x = invstd (g·scale - mean(g·scale) - x̂ mean(g·scale·x̂)),  x̂ = (x - mean) invstd
    ∂scale += Σ_rows g x̂,  ∂bias += Σ_rows g

The row statistics and every sum are computed in the compute type (float32 for float16 data, so a half
row of thousands of features neither overflows nor loses its mean); the two kernels read them as such.
"""

import numpy

from minidl.backend import Elementwise, xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.variable import Variable


def computeType(dtype):
    """float32 for float16 and float32 data, float64 for float64."""
    return numpy.dtype(numpy.float64 if numpy.dtype(dtype) == numpy.float64 else numpy.float32)


def _normalizeNumpy(x, mean, invstd, scale, bias, size, y):
    rows = x.reshape(-1, size).astype(mean.dtype)
    y.reshape(-1, size)[...] = (rows - mean[:, None]) * invstd[:, None] * scale + bias


normalizeKer = Elementwise(
    "minidl_layer_norm",
    "T x, raw S mean, raw S invstd, raw T scale, raw T bias, int32 size",
    "T y",
    "const ptrdiff_t row = i / size; const int col = i % size; "
    "y = (T)(((S)x - mean[row]) * invstd[row] * (S)scale[col] + (S)bias[col])",
    _normalizeNumpy,
)


def _normalizeGradNumpy(grad, x, mean, invstd, scale, meanGrad, meanGradXhat, size, ingrad):
    rows = x.reshape(-1, size).astype(mean.dtype)
    xhat = (rows - mean[:, None]) * invstd[:, None]
    scaled = grad.reshape(-1, size).astype(mean.dtype) * scale
    ingrad.reshape(-1, size)[...] = invstd[:, None] * (scaled - meanGrad[:, None] - xhat * meanGradXhat[:, None])


normalizeGradKer = Elementwise(
    "minidl_layer_norm_grad",
    "T grad, T x, raw S mean, raw S invstd, raw T scale, raw S meanGrad, raw S meanGradXhat, int32 size",
    "T ingrad",
    "const ptrdiff_t row = i / size; const int col = i % size; "
    "const S xhat = ((S)x - mean[row]) * invstd[row]; "
    "ingrad = (T)(invstd[row] * ((S)grad * (S)scale[col] - meanGrad[row] - xhat * meanGradXhat[row]))",
    _normalizeGradNumpy,
)


class LayerNorm(Module):
    """``LayerNorm(size, epsilon=1e-5)``: normalizes the last axis (of length ``size``) of data of any rank;
    ``scale`` starts at 1, ``bias`` at 0 (PyTorch's ``weight`` and ``bias``)."""

    cacheAttrs = ("inData", "data", "mean", "invstd")

    def __init__(self, size, epsilon=1e-5, dtype=numpy.float32, name=None):
        super().__init__(name)
        if isinstance(size, bool) or not isinstance(size, (int, numpy.integer)) or size < 1:
            raise ModuleError(f"LayerNorm size must be a positive integer, got {size!r}")
        if not epsilon > 0:
            raise ModuleError(f"LayerNorm epsilon must be positive, got {epsilon!r}")
        if not numpy.issubdtype(dtype, numpy.floating):
            raise ModuleError(f"LayerNorm dtype must be a float dtype, got {dtype!r}")
        self.size, self.epsilon = int(size), float(epsilon)
        self.setVar("scale", Variable(xp.ones((self.size,), dtype=dtype), name="scale"))
        self.setVar("bias", Variable(xp.zeros((self.size,), dtype=dtype), name="bias"))
        self.mean = self.invstd = None

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", dtype=self.scale.dtype)
        if data.ndim < 1 or data.shape[-1] != self.size:
            raise ModuleError(f"{self!r}: input must have shape (..., {self.size}), got {data.shape}")

    def updData(self, data):
        data = xp.ascontiguousarray(data)
        rows = data.reshape(-1, self.size).astype(computeType(data.dtype), copy=False)
        self.mean = rows.mean(axis=1)
        self.invstd = 1 / xp.sqrt(rows.var(axis=1) + self.epsilon)
        return normalizeKer(data, self.mean, self.invstd, self.scale, self.bias, self.size, xp.empty_like(data))

    def _sums(self, grad):
        """x̂ and g (as rows in the compute type), mean(g·scale) and mean(g·scale·x̂) per row."""
        wide = computeType(grad.dtype)
        rows = self.inData.reshape(-1, self.size).astype(wide, copy=False)
        xhat = (rows - self.mean[:, None]) * self.invstd[:, None]
        gradRows = grad.reshape(-1, self.size).astype(wide, copy=False)
        scaled = gradRows * self.scale.astype(wide, copy=False)
        return xhat, gradRows, scaled.mean(axis=1), (scaled * xhat).mean(axis=1)

    def updGrad(self, grad):
        grad = xp.ascontiguousarray(grad)
        _, _, meanGrad, meanGradXhat = self._sums(grad)
        inData = xp.ascontiguousarray(self.inData)
        return normalizeGradKer(grad, inData, self.mean, self.invstd, self.scale, meanGrad, meanGradXhat, self.size,
                                xp.empty_like(grad))

    def accGradParams(self, grad):
        xhat, gradRows, _, _ = self._sums(grad)
        self.vars["scale"].grad += (gradRows * xhat).sum(axis=0).astype(self.scale.dtype)
        self.vars["bias"].grad += gradRows.sum(axis=0).astype(self.scale.dtype)
