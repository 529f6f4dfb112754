"""LayerNorm over the last axis, per row x of ``size`` features (Ba, Kiros & Hinton 2016):

    y = (x - mean) / sqrt(var + epsilon) · scale + bias          (var: the biased variance of the row)
    ∂x = invstd (g·scale - mean(g·scale) - x̂ mean(g·scale·x̂)),  x̂ = (x - mean) invstd
    ∂scale += Σ_rows g x̂,  ∂bias += Σ_rows g

The row statistics and every sum are computed in the compute type (float32 for float16 data, so a half
row of thousands of features neither overflows nor loses its mean); the two kernels read them as such.
The row sums are Reductions: the mean, then the variance about it (two passes, as stable as NumPy's var), and the
two row sums of the input gradient in one pass (their pair, ``minidlPair``, summed as one value). The two column
sums of the parameter gradients are summed over interleaved parts of the rows in one pass (``partSumsKer``, parts x
features threads on a GPU, a part's rows with their features vectorized on the CPU), then over the parts (a
Reduction). Their order differs between the host and the GPU (see ``Reduction``), so the paths agree within
rounding.
"""

import math

import numpy

from minidl.backend import Elementwise, Reduction, valuesPerElement, xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.validation import checkNumber
from minidl.variable import Variable


def computeType(dtype):
    """float32 for float16 and float32 data, float64 for float64."""
    return numpy.dtype(numpy.float64 if numpy.dtype(dtype) == numpy.float64 else numpy.float32)


def _normalizeNumpy(x, mean, invstd, scale, bias, size, _span, y):
    rows = x.reshape(-1, size).astype(mean.dtype)
    y.reshape(-1, size)[...] = (rows - mean[:, None]) * invstd[:, None] * scale + bias


# The two kernels over the data take one element per ``span`` features of a row (``valuesPerElement``: a row on the
# CPU, where its statistics are read once and the loop vectorizes; a value on the GPU). 2048 rows of 128 features:
# 0.55 ms each, decoding every value's row and column by a division. ROW_SPAN: an element's first value, row, column.
ROW_SPAN = "const ptrdiff_t first = i * span, row = first / size; const int col = (int)(first - row * size); "
normalizeKer = Elementwise(
    "minidl_layer_norm",
    "raw T x, raw S mean, raw S invstd, raw T scale, raw T bias, int32 size, int32 span",
    "raw T y",
    ROW_SPAN +
    "const S rowMean = mean[row], rowInvstd = invstd[row]; "
    "\n#pragma omp simd\n"
    "for (int k = 0; k < span; ++k) "
    "  y[first + k] = (T)(((S)x[first + k] - rowMean) * rowInvstd * (S)scale[col + k] + (S)bias[col + k])",
    _normalizeNumpy,
    grain="2 * span",
)


def _normalizeGradNumpy(grad, x, mean, invstd, scale, meanGrad, meanGradXhat, size, _span, ingrad):
    rows = x.reshape(-1, size).astype(mean.dtype)
    xhat = (rows - mean[:, None]) * invstd[:, None]
    scaled = grad.reshape(-1, size).astype(mean.dtype) * scale
    ingrad.reshape(-1, size)[...] = invstd[:, None] * (scaled - meanGrad[:, None] - xhat * meanGradXhat[:, None])


normalizeGradKer = Elementwise(
    "minidl_layer_norm_grad",
    "raw T grad, raw T x, raw S mean, raw S invstd, raw T scale, raw S meanGrad, raw S meanGradXhat, int32 size, "
    "int32 span",
    "raw T ingrad",
    ROW_SPAN +
    "const S rowMean = mean[row], rowInvstd = invstd[row], rowMeanGrad = meanGrad[row], "
    "rowMeanGradXhat = meanGradXhat[row]; "
    "\n#pragma omp simd\n"
    "for (int k = 0; k < span; ++k) { "
    "  const S xhat = ((S)x[first + k] - rowMean) * rowInvstd; "
    "  ingrad[first + k] = (T)(rowInvstd * ((S)grad[first + k] * (S)scale[col + k] - rowMeanGrad "
    "- xhat * rowMeanGradXhat)); "
    "}",
    _normalizeGradNumpy,
    grain="3 * span",
)


PAIR = """
template <typename S> struct minidlPair {  // two sums reduced as one value (the same text in CUDA and on the host)
  S first, second;
  __device__ minidlPair() {}
  __device__ minidlPair(S value) : first(value), second(value) {}
  __device__ minidlPair(S one, S two) : first(one), second(two) {}
};
template <typename S> __device__ minidlPair<S> operator+(const minidlPair<S>& x, const minidlPair<S>& y) {
  return minidlPair<S>(x.first + y.first, x.second + y.second);
}
"""


def _meanNumpy(x, size, mean, axis, keepdims):
    mean[...] = x.astype(mean.dtype).sum(axis=axis, keepdims=keepdims) / mean.dtype.type(size)


meanKer = Reduction("minidl_layer_norm_mean", "T x, int32 size", "S mean", "(S)x", "a + b", "mean = a / (S)size",
                    "0", _meanNumpy)


def _invstdNumpy(x, mean, epsilon, size, invstd, axis, keepdims):
    deviation = x.astype(invstd.dtype) - mean
    invstd[...] = 1 / numpy.sqrt((deviation * deviation).sum(axis=axis, keepdims=keepdims) / invstd.dtype.type(size)
                                 + epsilon)


invstdKer = Reduction("minidl_layer_norm_invstd", "T x, S mean, S epsilon, int32 size", "S invstd",
                      "((S)x - mean) * ((S)x - mean)", "a + b", "invstd = (S)1 / sqrt(a / (S)size + epsilon)", "0",
                      _invstdNumpy)


def _rowSumsNumpy(grad, x, mean, invstd, scale, size, meanGrad, meanGradXhat, axis, keepdims):
    scaled = grad.astype(mean.dtype) * scale.astype(mean.dtype)
    xhat = (x.astype(mean.dtype) - mean) * invstd
    meanGrad[...] = scaled.sum(axis=axis, keepdims=keepdims) / mean.dtype.type(size)
    meanGradXhat[...] = (scaled * xhat).sum(axis=axis, keepdims=keepdims) / mean.dtype.type(size)


rowSumsKer = Reduction(
    "minidl_layer_norm_row_sums",
    "T grad, T x, S mean, S invstd, T scale, int32 size",
    "S meanGrad, S meanGradXhat",
    "minidlPair<S>((S)grad * (S)scale, (S)grad * (S)scale * (((S)x - mean) * invstd))",
    "a + b",
    "meanGrad = a.first / (S)size, meanGradXhat = a.second / (S)size",
    "0",
    _rowSumsNumpy,
    reduceType="minidlPair<S>",
    preamble=PAIR,
)


PARTS = 256  # the parameter gradients' rows are summed in up to this many interleaved parts, then the parts


def _partSumsNumpy(grad, x, mean, invstd, rows, features, parts, _span, partScale, partBias):
    wide = grad.reshape(rows, features).astype(mean.dtype)
    xhat = (x.reshape(rows, features).astype(mean.dtype) - mean.reshape(-1, 1)) * invstd.reshape(-1, 1)
    partScale.reshape(parts, features)[...] = (wide * xhat).reshape(-1, parts, features).sum(axis=0)
    partBias.reshape(parts, features)[...] = wide.reshape(-1, parts, features).sum(axis=0)


# Part p of the (rows, features) data holds its rows r = k·parts + p; an element sums ``span`` features of one part
# over the part's rows, in order (``valuesPerElement``: every feature on the CPU, each row's loop vectorized; one
# feature on a GPU, parts x features threads). As a Reduction of one output per part and feature (the values of
# each strided by a row), 2048 rows of 128 features took 0.9 ms on the CPU.
partSumsKer = Elementwise(
    "minidl_layer_norm_part_sums",
    "raw T grad, raw T x, raw S mean, raw S invstd, int32 rows, int32 features, int32 parts, int32 span",
    "raw S partScale, raw S partBias",
    "const ptrdiff_t first = i * span; const int part = (int)(first / features); "
    "const int col = (int)(first - (ptrdiff_t)part * features); "
    "S* __restrict__ sumScale = &partScale[first]; S* __restrict__ sumBias = &partBias[first]; "
    "for (int k = 0; k < span; ++k) { sumScale[k] = (S)0; sumBias[k] = (S)0; } "
    "for (int r = part; r < rows; r += parts) { "
    "  const S rowMean = mean[r], rowInvstd = invstd[r]; "
    "  const T* __restrict__ g = &grad[(ptrdiff_t)r * features + col]; "
    "  const T* __restrict__ v = &x[(ptrdiff_t)r * features + col]; "
    "\n#pragma omp simd\n"
    "  for (int k = 0; k < span; ++k) { "
    "    const S gk = (S)g[k]; sumScale[k] += gk * (((S)v[k] - rowMean) * rowInvstd); sumBias[k] += gk; "
    "  } "
    "}",
    _partSumsNumpy,
    grain="2 * (rows / parts) * span",
)


def _paramSumsNumpy(partScale, partBias, scaleGrad, biasGrad, axis, keepdims):
    scaleGrad[...] = (scaleGrad.astype(partScale.dtype) + partScale.sum(axis=0)).astype(scaleGrad.dtype)
    biasGrad[...] = (biasGrad.astype(partBias.dtype) + partBias.sum(axis=0)).astype(biasGrad.dtype)


paramSumsKer = Reduction(
    "minidl_layer_norm_param_sums",
    "S partScale, S partBias",
    "T scaleGrad, T biasGrad",
    "minidlPair<S>(partScale, partBias)",
    "a + b",
    "scaleGrad = (T)((S)scaleGrad + a.first), biasGrad = (T)((S)biasGrad + a.second)",
    "0",
    _paramSumsNumpy,
    reduceType="minidlPair<S>",
    preamble=PAIR,
)


def parts(rows):
    """The parts the parameter sums split ``rows`` into: the largest power of 2 dividing it, at most PARTS (so
    that a GPU sums (rows, features) with parts x features output elements, not features alone)."""
    return math.gcd(rows, PARTS) if rows else 1


class LayerNorm(Module):
    """``LayerNorm(size, epsilon=1e-5)``: normalizes the last axis (of length ``size``) of data of any rank;
    ``scale`` starts at 1, ``bias`` at 0 (PyTorch's ``weight`` and ``bias``)."""

    cacheAttrs = ("inData", "data", "mean", "invstd")

    def __init__(self, size, epsilon=1e-5, dtype=numpy.float32, name=None):
        super().__init__(name)
        if isinstance(size, bool) or not isinstance(size, (int, numpy.integer)) or size < 1:
            raise ModuleError(f"LayerNorm size must be a positive integer, got {size!r}")
        epsilon = checkNumber(epsilon, "LayerNorm epsilon", low=0, lowOpen=True)
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
        rows = data.reshape(-1, self.size)
        wide = computeType(data.dtype)
        self.mean = meanKer(rows, self.size, xp.empty((rows.shape[0], 1), wide), axis=1, keepdims=True).reshape(-1)
        self.invstd = invstdKer(rows, self.mean.reshape(-1, 1), self.epsilon, self.size,
                                xp.empty((rows.shape[0], 1), wide), axis=1, keepdims=True).reshape(-1)
        span = valuesPerElement(self.size)
        return normalizeKer(data, self.mean, self.invstd, self.scale, self.bias, self.size, span,
                            xp.empty_like(data), size=data.size // span)

    def _rows(self, grad):
        """The gradient and the input as (rows, size), and the row statistics as (rows, 1)."""
        grad = xp.ascontiguousarray(grad).reshape(-1, self.size)
        return grad, xp.ascontiguousarray(self.inData).reshape(-1, self.size), self.mean.reshape(-1, 1), \
            self.invstd.reshape(-1, 1)

    def updGrad(self, grad):
        gradRows, rows, mean, invstd = self._rows(grad)
        wide = mean.dtype
        meanGrad, meanGradXhat = rowSumsKer(gradRows, rows, mean, invstd, self.scale.reshape(1, -1), self.size,
                                            xp.empty(mean.shape[0], wide), xp.empty(mean.shape[0], wide), axis=1)
        span = valuesPerElement(self.size)
        return normalizeGradKer(gradRows, rows, self.mean, self.invstd, self.scale, meanGrad, meanGradXhat,
                                self.size, span, xp.empty_like(gradRows), size=gradRows.size // span
                                ).reshape(grad.shape)

    def accGradParams(self, grad):
        """Two Reductions: per part of the rows (``parts``) and feature, then over the parts."""
        gradRows, rows, mean, _ = self._rows(grad)
        split, span = parts(rows.shape[0]), valuesPerElement(self.size)
        partScale, partBias = (xp.empty((split, self.size), mean.dtype) for _ in range(2))
        partSumsKer(gradRows, rows, self.mean, self.invstd, rows.shape[0], self.size, split, span, partScale,
                    partBias, size=split * self.size // span)
        paramSumsKer(partScale, partBias, self.vars["scale"].grad, self.vars["bias"].grad, axis=0)
