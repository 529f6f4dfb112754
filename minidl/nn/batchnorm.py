"""BatchNorm over (N, C) data (BatchNorm2D extends it to (N, C, H, W)): per map c,

    y = scale[c] (x - mean[c]) / sqrt(var[c] + epsilon) + bias[c],

with the batch's mean and (biased) variance over every axis but the maps' in trainMode, and the running
statistics in evalMode. Each trainMode step updates them in place: running = (1 - momentum) running +
momentum batch, the variance unbiased by count / (count - 1). Backward, with x̂ the normalised input and
coef = scale / sqrt(var + epsilon):  ∂x = coef (grad - mean(grad) - x̂ mean(grad x̂)) in trainMode,
∂x = coef grad in evalMode;  ∂scale += Σ grad x̂,  ∂bias += Σ grad.
"""

import numpy

from minidl.backend import Elementwise, Reduction, isGpu, simdSum, xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray, checkNotEmpty
from minidl.validation import checkNumber, checkSize
from minidl.variable import Variable


def _scaleShiftNumpy(x, mean, invstd, scale, bias, maps, spatial, _span, y):
    out = y.reshape(-1, maps, spatial)
    numpy.subtract(x.reshape(-1, maps, spatial), mean[:, None], out=out)
    out *= (invstd * scale)[:, None]
    out += bias[:, None]


# The kernels run over blocks of `span` values of the (n, c) planes of `spatial` values (size: N C blocks),
# a map's coefficients read once per block and the loop over the block contiguous. On the CPU a block is a whole
# plane (``span``): one element per value, decoding its map by a division, made BatchNorm2D's forward and
# backward on 8x64x56x56 take 13.2 ms against 9.1 ms by NumPy. On the GPU a block is one value (the elementwise
# kernels) or PARTIAL_SPAN values (the sums), so that no thread walks a plane. ``scaleShiftKer`` and ``mapTotals``
# serve GroupNorm (InstanceNorm) too; BatchNorm's own step is the kernels after them: four launches a layer on a
# GPU (``statsKer``, ``forwardKer``, ``gradSumsKer``, ``backwardKer``), six where a block of threads per map would
# leave a large tensor too few threads, and on the CPU (see ``reducedOnDevice``).
BLOCK = ("const int blocks = (spatial + span - 1) / span; const long long plane = i / blocks; "
         "const int first = (int)(i - plane * blocks) * span, last = min(spatial, first + span); ")


def span(spatial, perThread=1):
    """Values per element of the kernels for planes of ``spatial`` values: the plane on the CPU, ``perThread``
    on the GPU."""
    return min(spatial, perThread) if isGpu else spatial


def elements(planes, spatial, span):
    """The loop size of the kernels: a block of ``span`` values of each plane per element."""
    return planes * -(-spatial // span)


scaleShiftKer = Elementwise(
    "minidl_batchnorm_scale_shift",
    "raw T x, raw T mean, raw T invstd, raw T scale, raw T bias, int32 maps, int32 spatial, int32 span",
    "raw T y",
    BLOCK + "const int c = plane % maps; const T m = mean[c], a = invstd[c] * scale[c], b = bias[c]; "
    "const T* __restrict__ src = &x[plane * spatial]; T* __restrict__ out = &y[plane * spatial]; "
    "for (int s = first; s < last; ++s) out[s] = (src[s] - m) * a + b",
    _scaleShiftNumpy,
    grain="span",
)


def _chunkBounds(batch, chunks):
    return [k * batch // chunks for k in range(chunks + 1)]


# BatchNorm's step in six launches per layer where it does not run on Reductions (``reducedOnDevice``). Forward:
# the partial sums of each map (``partialsKer``), their total (a CuPy sum over the parts), and ``forwardKer``,
# which derives each map's mean and 1/std from the totals, writes y, and in its first element of each map keeps
# (mean, 1/std) for backward and updates the running statistics.
# Backward: the partial sums of grad and grad (x - mean), their total, and ``backwardKer``, which writes ∂x and in
# its first element of each map adds the parameters' gradients. On the GPU a partial sum covers PARTIAL_SPAN
# values of one image (a thread per 16 values, so a tensor of 2^20 values takes 2^16 threads); on the CPU a whole
# plane of a few images (one element's sums vectorized by ``simdSum``).
PARTIAL_SPAN = 16


def _partialsNumpy(g, x, center, batch, maps, spatial, chunks, span, shifted, sums):
    bounds, blocks = _chunkBounds(batch, chunks), -(-spatial // span)
    acc = sums.dtype
    cx = x.reshape(batch, maps, spatial)[0, :, 0].astype(acc) if shifted else center
    cg = cx if shifted else numpy.zeros_like(center)
    out = sums.reshape(2, chunks * blocks, maps)
    for k, block in numpy.ndindex(chunks, blocks):
        part, values = slice(bounds[k], bounds[k + 1]), slice(block * span, (block + 1) * span)
        dg = g.reshape(batch, maps, spatial)[part, :, values].astype(acc) - cg[:, None]
        dx = x.reshape(batch, maps, spatial)[part, :, values].astype(acc) - cx[:, None]
        out[0, k * blocks + block] = dg.sum(axis=(0, 2))
        out[1, k * blocks + block] = (dg * dx).sum(axis=(0, 2))


# sums[0, k B + j, c] = Σ (g - cg), sums[1, k B + j, c] = Σ (g - cg) (x - cx) over the images of chunk k (images
# k N / chunks to (k + 1) N / chunks) and the positions of block j (j span to (j + 1) span, B blocks) of map c, in
# S. ``shifted`` (forward, g = x): cg = cx = the map's first value x[0, c, 0], so the totals give the mean and the
# variance by the shifted-data formula (the shift lies within the data's spread, so nothing cancels); else
# (backward, g = grad): cg = 0 and cx = center[c], the batch mean. Elements ordered (chunk, map, block), so
# neighbouring GPU threads read neighbouring blocks.
partialsKer = Elementwise(
    "minidl_batchnorm_partials",
    "raw T g, raw T x, raw S center, int32 batch, int32 maps, int32 spatial, int32 chunks, int32 span, "
    "int32 shifted",
    "raw S sums",
    "const int blocks = (spatial + span - 1) / span, block = (int)(i % blocks), c = (int)(i / blocks % maps); "
    "const long long chunk = i / blocks / maps, part = chunk * blocks + block, parts = (long long)chunks * blocks; "
    "const int first = block * span, last = min(spatial, first + span); "
    "const S cx = shifted ? (S)x[(long long)c * spatial] : center[c], cg = shifted ? cx : (S)0; "
    "S a = (S)0, b = (S)0; "
    "for (long long n = chunk * batch / chunks; n < (chunk + 1) * batch / chunks; ++n) { "
    "  const T* __restrict__ gRow = &g[(n * maps + c) * spatial]; "
    "  const T* __restrict__ xRow = &x[(n * maps + c) * spatial]; "
    + simdSum("a", "b") +
    "  for (int s = first; s < last; ++s) { const S d = (S)gRow[s] - cg; a += d; b += d * ((S)xRow[s] - cx); } "
    "} "
    "sums[part * maps + c] = a; sums[(parts + part) * maps + c] = b",
    _partialsNumpy,
    grain="2 * span * (batch / chunks)",
)


def _forwardNumpy(x, sums, scale, bias, count, epsilon, momentum, unbias, maps, spatial, _span, batchStats, y,
                  runningMean, runningVar, stats):
    acc = stats.dtype
    if batchStats == 2:
        mean, var = sums[0].copy(), sums[1].copy()
    elif batchStats:
        shift = x.reshape(-1, maps, spatial)[0, :, 0].astype(acc)
        deviation = sums[0] / count
        mean = shift + deviation
        var = sums[1] / count - deviation * deviation
        var[var < 0] = 0
    else:
        mean, var = runningMean.copy(), runningVar.copy()
    invstd = acc.type(1) / numpy.sqrt(var + epsilon)
    stats[0], stats[1] = mean, invstd
    if batchStats:
        stats[2], stats[3] = runningMean, runningVar
        runningMean[...] = (1 - momentum) * runningMean + momentum * mean
        runningVar[...] = (1 - momentum) * runningVar + momentum * (var * unbias)
    out = ((x.reshape(-1, maps, spatial).astype(acc) - mean[:, None]) * (invstd * scale.astype(acc))[:, None]
           + bias.astype(acc)[:, None])
    y.reshape(-1, maps, spatial)[...] = out


# y = (x - mean[c]) invstd[c] scale[c] + bias[c], computed in S. With ``batchStats`` 1: mean = shift + Σd / count
# and var = max(Σd² / count - (Σd / count)², 0) from the totals of ``partialsKer`` (shift = x[0, c, 0]); with 2:
# (mean, var) = sums[:, c] (from ``statsKer``); with 0: the running statistics. The element that starts map c's
# first plane stores (mean, invstd) in ``stats`` and, with ``batchStats``, keeps the running statistics in its rows 2
# and 3 (what a failed pass puts back: ``restoreBuffers``) and updates running = (1 - momentum) running + momentum
# batch (the variance times ``unbias`` = count / (count - 1)); no other element reads what it writes.
forwardKer = Elementwise(
    "minidl_batchnorm_forward",
    "raw T x, raw S sums, raw T scale, raw T bias, S count, S epsilon, S momentum, S unbias, int32 maps, "
    "int32 spatial, int32 span, int32 batchStats",
    "raw T y, raw S runningMean, raw S runningVar, raw S stats",
    BLOCK + "const int c = (int)(plane % maps); S mean, var; "
    "if (batchStats == 2) { mean = sums[c]; var = sums[maps + c]; } "
    "else if (batchStats) { const S deviation = sums[c] / count; mean = (S)x[(long long)c * spatial] + deviation; "
    "  var = sums[maps + c] / count - deviation * deviation; if (var < (S)0) var = (S)0; } "
    "else { mean = runningMean[c]; var = runningVar[c]; } "
    "const S invstd = (S)1 / sqrt(var + epsilon), a = invstd * (S)scale[c], b = (S)bias[c]; "
    "if (plane == c && first == 0) { stats[c] = mean; stats[maps + c] = invstd; "
    "  if (batchStats) { stats[2 * maps + c] = runningMean[c]; stats[3 * maps + c] = runningVar[c]; "
    "    runningMean[c] = ((S)1 - momentum) * runningMean[c] + momentum * mean; "
    "    runningVar[c] = ((S)1 - momentum) * runningVar[c] + momentum * (var * unbias); } } "
    "const T* __restrict__ src = &x[plane * spatial]; T* __restrict__ out = &y[plane * spatial]; "
    "for (int s = first; s < last; ++s) out[s] = (T)(((S)src[s] - mean) * a + b)",
    _forwardNumpy,
    grain="span",
)


def _centred(sums, shift, mean):
    """Σ grad (x - mean) from Σ grad = sums[0] and Σ grad (x - shift) = sums[1]."""
    return sums[1] + (shift - mean) * sums[0]


def _backwardNumpy(grad, x, stats, shift, sums, scale, count, maps, spatial, _span, batchStats, ingrad, scaleGrad,
                   biasGrad):
    acc = stats.dtype
    mean, invstd = stats[0], stats[1]
    sumGX = _centred(sums, shift, mean)
    a = scale.astype(acc) * invstd
    g0 = sums[0] / count if batchStats else numpy.zeros_like(mean)
    k = invstd * invstd * sumGX / count if batchStats else numpy.zeros_like(mean)
    g, v = grad.reshape(-1, maps, spatial).astype(acc), x.reshape(-1, maps, spatial).astype(acc)
    ingrad.reshape(-1, maps, spatial)[...] = a[:, None] * ((g - (v - mean[:, None]) * k[:, None]) - g0[:, None])
    scaleGrad += (sumGX * invstd).astype(scaleGrad.dtype)
    biasGrad += sums[0].astype(biasGrad.dtype)


# ∂x = a ((grad - (x - mean) k) - g0) with a = scale invstd, and with ``batchStats`` g0 = Σgrad / count and
# k = invstd² Σgrad (x - mean) / count, else g0 = k = 0; computed in S. ``sums`` holds Σgrad and Σgrad (x - shift)
# (the totals of ``partialsKer``, shift = mean, or of ``gradSumsKer``, shift its own), so Σgrad (x - mean) =
# sums[1] + (shift - mean) sums[0]. The element that starts map c's first plane also adds ∂scale[c] += invstd
# Σgrad (x - mean) and ∂bias[c] += Σgrad.
backwardKer = Elementwise(
    "minidl_batchnorm_backward",
    "raw T grad, raw T x, raw S stats, raw S shift, raw S sums, raw T scale, S count, int32 maps, int32 spatial, "
    "int32 span, int32 batchStats",
    "raw T ingrad, raw T scaleGrad, raw T biasGrad",
    BLOCK + "const int c = (int)(plane % maps); "
    "const S m = stats[c], invstd = stats[maps + c], sg = sums[c], sgx = sums[maps + c] + (shift[c] - m) * sg; "
    "const S a = (S)scale[c] * invstd, g0 = batchStats ? (S)(sg / count) : (S)0, "
    "k = batchStats ? (S)(invstd * invstd * sgx / count) : (S)0; "
    "if (plane == c && first == 0) { scaleGrad[c] += (T)(sgx * invstd); biasGrad[c] += (T)sg; } "
    "const T* __restrict__ g = &grad[plane * spatial]; const T* __restrict__ v = &x[plane * spatial]; "
    "T* __restrict__ out = &ingrad[plane * spatial]; "
    "for (int s = first; s < last; ++s) out[s] = (T)(a * (((S)g[s] - ((S)v[s] - m) * k) - g0))",
    _backwardNumpy,
    grain="2 * span",
)


def _paramGradsNumpy(sumG, sumGX, shift, mean, invstd, scaleGrad, biasGrad):
    scaleGrad += (_centred((sumG, sumGX), shift, mean) * invstd).astype(scaleGrad.dtype)
    biasGrad += sumG.astype(biasGrad.dtype)


# ∂scale += invstd Σgrad (x - mean), ∂bias += Σgrad: BatchNorm's parameter gradients when no ∂x is asked for,
# from Σgrad and Σgrad (x - shift) as ``backwardKer`` takes them.
paramGradsKer = Elementwise(
    "minidl_batchnorm_param_grads",
    "S sumG, S sumGX, S shift, S mean, S invstd",
    "T scaleGrad, T biasGrad",
    "scaleGrad += (T)((sumGX + (shift - mean) * sumG) * invstd); biasGrad += (T)sumG",
    _paramGradsNumpy,
)


def mapTotals(g, x, center, shifted):
    """(2, C) totals of ``partialsKer`` over (N, C, ...) arrays, in ``center``'s dtype: partials over chunks of
    the batch (a few on the CPU, each image on the GPU) and blocks of the planes (whole planes on the CPU,
    PARTIAL_SPAN values on the GPU), added by one sum."""
    batch, maps = g.shape[:2]
    chunks, spatial = (batch if isGpu else min(batch, 4)), g.size // (batch * maps)
    values = span(spatial, PARTIAL_SPAN)
    parts = elements(chunks, spatial, values)
    sums = xp.empty((2, parts, maps), dtype=center.dtype)
    partialsKer(g, x, center, batch, maps, spatial, chunks, values, int(shifted), sums, size=parts * maps)
    return sums.sum(axis=1)


# On a GPU, where one Reduction per map runs enough threads (see ``reducedOnDevice``), BatchNorm's step takes four
# launches: ``statsKer`` (each map's mean and variance) and ``forwardKer``; ``gradSumsKer`` and ``backwardKer``.
# CuPy reduces a map in a block of threads, each walking the map's values with a stride and keeping their sums
# about its own shift, the first value it met (a value within the data's spread, so nothing cancels); two such
# partial results join by moving one onto the other's shift (the shifted-data formulas, exact in real arithmetic
# whatever the order). A map holding NaN or an infinity gets NaN statistics on every path.
SHIFTED = """
template <typename S> struct minidlShifted {  // sums about a shift: Σ (x - shift), and two more
  S shift, d, first, second; int count;
  __device__ minidlShifted() {}
  __device__ minidlShifted(S x, S g, S gd, int n) : shift(x), d(0), first(g), second(gd), count(n) {}
  __device__ minidlShifted(S s, S sd, S one, S two, int n) : shift(s), d(sd), first(one), second(two), count(n) {}
  __device__ bool finite() const { return isfinite(shift) && isfinite(d) && isfinite(first) && isfinite(second); }
  __device__ S orNan(S value) const {  // NaN for every result of a map holding NaN or an infinity
    const S zero = (S)0;
    return finite() ? value : (S)(zero / zero);
  }
  __device__ S mean() const { return orNan((S)(shift + d / (S)count)); }
  __device__ S variance() const {  // of the moments: Σ (x - shift)² / n - (Σ (x - shift) / n)², at least 0
    const S deviation = (S)(d / (S)count), spread = (S)(first / (S)count - deviation * deviation);
    return orNan(spread < (S)0 ? (S)0 : spread);
  }
  __device__ S centred(S center) const { return orNan((S)(second + (shift - center) * first)); }  // Σ g (x - center)
};
// the moments of x: first = Σ (x - shift)² (second unused)
template <typename S> __device__ minidlShifted<S> minidlMoments(const minidlShifted<S>& a, const minidlShifted<S>& b) {
  if (a.count == 0) return b;
  if (b.count == 0) return a;
  const S delta = b.shift - a.shift, n = (S)b.count;
  return minidlShifted<S>(a.shift, a.d + (b.d + n * delta), a.first + (b.first + delta * ((S)2 * b.d + n * delta)),
                          (S)0, a.count + b.count);
}
// the gradient sums: first = Σ g, second = Σ g (x - shift)
template <typename S> __device__ minidlShifted<S> minidlGradSums(const minidlShifted<S>& a, const minidlShifted<S>& b) {
  if (a.count == 0) return b;
  if (b.count == 0) return a;
  const S delta = b.shift - a.shift;
  return minidlShifted<S>(a.shift, a.d + (b.d + (S)b.count * delta), a.first + b.first,
                          a.second + (b.second + delta * b.first), a.count + b.count);
}
"""


def _finiteMaps(values, axis):
    return numpy.isfinite(values).all(axis=axis)


def _statsNumpy(x, mean, var, axis, keepdims):
    w = x.astype(mean.dtype)
    finite = _finiteMaps(w, axis)
    with numpy.errstate(invalid="ignore"):
        mean[...] = numpy.where(finite, w.mean(axis=axis), numpy.nan)
        var[...] = numpy.where(finite, w.var(axis=axis), numpy.nan)


# mean = Σx / n and var = Σ (x - mean)² / n (biased) of each map, reduced over axes (0, 2) of (N, C, spatial) data.
statsKer = Reduction(
    "minidl_batchnorm_stats",
    "T x",
    "S mean, S var",
    "minidlShifted<S>((S)x, (S)0, (S)0, 1)",
    "minidlMoments(a, b)",
    "mean = a.mean(), var = a.variance()",
    "minidlShifted<S>((S)0, (S)0, (S)0, 0)",
    _statsNumpy,
    reduceType="minidlShifted<S>",
    preamble=SHIFTED,
)


def _gradSumsNumpy(grad, x, center, sumG, sumGX, axis, keepdims):
    g, w = grad.astype(center.dtype), x.astype(center.dtype)
    finite = _finiteMaps(g, axis) & _finiteMaps(w, axis)
    with numpy.errstate(invalid="ignore"):
        center[...] = numpy.where(finite, w.mean(axis=axis), numpy.nan)
        sumG[...] = numpy.where(finite, g.sum(axis=axis), numpy.nan)
        sumGX[...] = numpy.where(finite, (g * (w - center.reshape(1, -1, 1))).sum(axis=axis), numpy.nan)


# center = the map's mean of x (as ``statsKer`` computes it, up to rounding), sumG = Σgrad and
# sumGX = Σgrad (x - center) about that center as rounded to S, reduced over axes (0, 2) of (N, C, spatial) data:
# ``backwardKer``'s totals, the center its shift (Σgrad (x - mean) = sumGX + (center - mean) sumG for the forward
# pass's mean).
gradSumsKer = Reduction(
    "minidl_batchnorm_grad_sums",
    "T grad, T x",
    "S center, S sumG, S sumGX",
    "minidlShifted<S>((S)x, (S)grad, (S)0, 1)",
    "minidlGradSums(a, b)",
    "center = a.mean(), sumG = a.orNan(a.first), sumGX = a.centred(center)",
    "minidlShifted<S>((S)0, (S)0, (S)0, 0)",
    _gradSumsNumpy,
    reduceType="minidlShifted<S>",
    preamble=SHIFTED,
)

REDUCTION_BLOCK = 512  # CuPy's threads per block of a reduction: a block per map (a thread per value when fewer)
LARGE, WIDE = 2**20, 2**16  # a launch over LARGE values or more should run WIDE threads or more


def reducedOnDevice(size, maps, spatial):
    """Whether BatchNorm's sums run as one Reduction per map (four launches a step) rather than as partial sums and
    their total (six): on a GPU, where a block per map gives a tensor of ``size`` values at least WIDE threads when
    it has LARGE values or more (CuPy serves several maps per block when the maps are the last axis, spatial 1).
    On the CPU, partial sums over whole planes of a few images measure faster (the host path of a struct
    reduction does not vectorize)."""
    if not isGpu:
        return False
    blocks = maps if spatial > 1 else -(-maps // 32)
    return size < LARGE or blocks * REDUCTION_BLOCK >= WIDE


class BatchNorm(Module):
    """``BatchNorm(size, epsilon=1e-5, momentum=0.1)``: Variables ``scale`` (ones) and ``bias`` (zeros);
    running statistics in ``getBufferTable()`` as ``mean`` (zeros) and ``var`` (ones)."""

    ndim = 2
    cacheAttrs = ("inData", "data", "stats", "usedBatchStats")
    # computed once per backward for ∂x and the parameters, and whether updGrad's kernel added the latter
    sharedInBackward = ("gradTotals", "paramGradsAdded")

    def __init__(self, size, epsilon=1e-5, momentum=0.1, dtype=numpy.float32, name=None):
        super().__init__(name)
        kind = type(self).__name__
        size, epsilon = checkSize(size, f"{kind} size"), checkNumber(epsilon, f"{kind} epsilon", low=0, lowOpen=True)
        self.size, self.epsilon, self.momentum = size, epsilon, checkNumber(momentum, f"{kind} momentum", low=0, high=1)
        self.setVar("scale", Variable(xp.ones((size,), dtype=dtype), name="scale"))
        self.setVar("bias", Variable(xp.zeros((size,), dtype=dtype), name="bias"))
        wide = numpy.promote_types(dtype, numpy.float32)  # the running statistics, as castBuffers keeps them
        self.runningMean, self.runningVar = xp.zeros((size,), dtype=wide), xp.ones((size,), dtype=wide)
        self.stats = self.usedBatchStats = None  # (mean, 1/std) per map of the last forward pass, in float32 at least
        self.firstStats = None  # the stats of the first train use since markBuffers
        self.gradTotals, self.paramGradsAdded = None, False

    def castBuffers(self, dtype):
        """calcMode: the running statistics are kept in float32 at least (float16 would round away the momentum
        updates of a slowly moving mean); the batch statistics are always summed in float32 at least."""
        wide = numpy.promote_types(dtype, numpy.float32)
        self.runningMean, self.runningVar = self.runningMean.astype(wide), self.runningVar.astype(wide)

    def getBufferTable(self):
        """The running statistics, updated in place (a checkpoint may write into them)."""
        return {"mean": self.runningMean, "var": self.runningVar}

    def markBuffers(self):
        """Copy nothing: the forward kernel keeps the running statistics it replaces (``stats`` rows 2 and 3)."""
        self.firstStats = None

    def restoreBuffers(self, mark):
        """Put back the running statistics of before the first train use since ``markBuffers``."""
        if self.firstStats is not None:
            self.runningMean[...] = self.firstStats[2]
            self.runningVar[...] = self.firstStats[3]

    def minTrainBatch(self):
        """2 when one sample holds one value per map (its batch variance needs two); known once it has seen input."""
        return 2 if self.inData is None or self.inData[:1, :1].size == 1 else 1

    def checkBufferValues(self, arrays):
        """The running mean must be finite, the running variance finite and >= 0 (else every output is NaN)."""
        mean, var = arrays.get("mean"), arrays.get("var")
        if mean is not None and not numpy.isfinite(mean).all():
            raise ModuleError(f"{self!r}: the running mean holds NaN or infinity")
        if var is not None and not (numpy.isfinite(var).all() and (var >= 0).all()):
            raise ModuleError(f"{self!r}: the running variance must be finite and >= 0, got min {numpy.min(var)}")

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=self.ndim, dtype=self.scale.dtype)
        if data.shape[1] != self.size:
            raise ModuleError(f"{self!r}: input must have {self.size} maps on axis 1, got shape {data.shape}")
        checkNotEmpty(self, data)
        if self.train and data.size // self.size < 2:
            raise ModuleError(f"{self!r}: trainMode needs more than one value per map, got shape {data.shape}")

    def updData(self, data):
        data = xp.ascontiguousarray(data)
        acc = self.runningMean.dtype  # float32 at least: float16 sums overflow past 65504
        count = data.size // self.size
        spatial = count // data.shape[0]
        mode = 0
        sums = self.runningMean
        if self.train and reducedOnDevice(data.size, self.size, spatial):
            mode, sums = 2, xp.empty((2, self.size), dtype=acc)
            statsKer(data.reshape(-1, self.size, spatial), sums[0], sums[1], axis=(0, 2))
        elif self.train:
            mode, sums = 1, mapTotals(data, data, self.runningMean, shifted=True)
        self.stats = xp.empty((4, self.size), dtype=acc)  # mean, 1/std and, in train mode, the running ones before
        self.usedBatchStats = self.train
        if self.train and self.firstStats is None:
            self.firstStats = self.stats  # this pass's first use: what restoreBuffers puts back
        values = span(spatial)
        y = xp.empty_like(data)
        forwardKer(data, sums, self.scale, self.bias, count, self.epsilon, self.momentum,
                   count / max(count - 1, 1), self.size, spatial, values, mode, y, self.runningMean,
                   self.runningVar, self.stats, size=elements(data.shape[0] * self.size, spatial, values))
        return y

    def _gradTotals(self, grad):
        """(shift, (Σ grad, Σ grad (x - shift))) per map in float32 at least, the shift near the batch mean (the
        mean itself for ``mapTotals``); computed on the first request of a backward pass."""
        if self.gradTotals is None:
            grad, data = xp.ascontiguousarray(grad), xp.ascontiguousarray(self.inData)
            spatial = grad.size // (grad.shape[0] * self.size)
            if reducedOnDevice(grad.size, self.size, spatial):
                totals = xp.empty((3, self.size), dtype=self.stats.dtype)
                planes = (-1, self.size, spatial)
                gradSumsKer(grad.reshape(planes), data.reshape(planes), totals[0], totals[1], totals[2], axis=(0, 2))
                self.gradTotals = totals[0], totals[1:]
            else:
                self.gradTotals = self.stats[0], mapTotals(grad, data, self.stats[0], shifted=False)
        return self.gradTotals

    def updGrad(self, grad):
        (shift, totals), count = self._gradTotals(grad), grad.size // self.size
        spatial = count // grad.shape[0]
        grad, values = xp.ascontiguousarray(grad), span(spatial)
        self.paramGradsAdded = True
        return backwardKer(grad, xp.ascontiguousarray(self.inData), self.stats, shift, totals, self.scale, count,
                           self.size, spatial, values, int(self.usedBatchStats), xp.empty_like(grad),
                           self.vars["scale"].grad, self.vars["bias"].grad,
                           size=elements(grad.shape[0] * self.size, spatial, values))[0]

    def accGradParams(self, grad):
        """Adds the parameters' gradients, unless updGrad's kernel has added them in this pass."""
        if not self.paramGradsAdded:
            shift, totals = self._gradTotals(grad)
            paramGradsKer(totals[0], totals[1], shift, self.stats[0], self.stats[1], self.vars["scale"].grad,
                          self.vars["bias"].grad)
