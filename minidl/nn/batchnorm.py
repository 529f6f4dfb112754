"""BatchNorm over (N, C) data (BatchNorm2D extends it to (N, C, H, W)): per map c,

    y = scale[c] (x - mean[c]) / sqrt(var[c] + epsilon) + bias[c],

with the batch's mean and (biased) variance over every axis but the maps' in trainMode, and the running
statistics in evalMode. Each trainMode step updates them in place: running = (1 - momentum) running +
momentum batch, the variance unbiased by count / (count - 1). Backward, with x̂ the normalised input and
coef = scale / sqrt(var + epsilon):  ∂x = coef (grad - mean(grad) - x̂ mean(grad x̂)) in trainMode,
∂x = coef grad in evalMode;  ∂scale += Σ grad x̂,  ∂bias += Σ grad.
"""

import numpy

from minidl.backend import Elementwise, isGpu, simdSum, xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
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
# serve GroupNorm (InstanceNorm) too; BatchNorm's own step is the kernels after them, six launches a layer.
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


# BatchNorm's step in six launches per layer. Forward: the partial sums of each map (``partialsKer``), their total
# (a CuPy sum over the parts), and ``forwardKer``, which derives each map's mean and 1/std from the totals, writes
# y, and in its first element of each map keeps (mean, 1/std) for backward and updates the running statistics.
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
    if batchStats:
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
        runningMean[...] = (1 - momentum) * runningMean + momentum * mean
        runningVar[...] = (1 - momentum) * runningVar + momentum * (var * unbias)
    out = ((x.reshape(-1, maps, spatial).astype(acc) - mean[:, None]) * (invstd * scale.astype(acc))[:, None]
           + bias.astype(acc)[:, None])
    y.reshape(-1, maps, spatial)[...] = out


# y = (x - mean[c]) invstd[c] scale[c] + bias[c], computed in S. With ``batchStats``: mean = shift + Σd / count
# and var = max(Σd² / count - (Σd / count)², 0) from the totals of ``partialsKer`` (shift = x[0, c, 0]), else the
# running statistics. The element that starts map c's first plane stores (mean, invstd) in ``stats`` and, with
# ``batchStats``, updates running = (1 - momentum) running + momentum batch (the variance times ``unbias`` =
# count / (count - 1)); no other element reads what it writes.
forwardKer = Elementwise(
    "minidl_batchnorm_forward",
    "raw T x, raw S sums, raw T scale, raw T bias, S count, S epsilon, S momentum, S unbias, int32 maps, "
    "int32 spatial, int32 span, int32 batchStats",
    "raw T y, raw S runningMean, raw S runningVar, raw S stats",
    BLOCK + "const int c = (int)(plane % maps); S mean, var; "
    "if (batchStats) { const S deviation = sums[c] / count; mean = (S)x[(long long)c * spatial] + deviation; "
    "  var = sums[maps + c] / count - deviation * deviation; if (var < (S)0) var = (S)0; } "
    "else { mean = runningMean[c]; var = runningVar[c]; } "
    "const S invstd = (S)1 / sqrt(var + epsilon), a = invstd * (S)scale[c], b = (S)bias[c]; "
    "if (plane == c && first == 0) { stats[c] = mean; stats[maps + c] = invstd; "
    "  if (batchStats) { runningMean[c] = ((S)1 - momentum) * runningMean[c] + momentum * mean; "
    "    runningVar[c] = ((S)1 - momentum) * runningVar[c] + momentum * (var * unbias); } } "
    "const T* __restrict__ src = &x[plane * spatial]; T* __restrict__ out = &y[plane * spatial]; "
    "for (int s = first; s < last; ++s) out[s] = (T)(((S)src[s] - mean) * a + b)",
    _forwardNumpy,
    grain="span",
)


def _backwardNumpy(grad, x, stats, sums, scale, count, maps, spatial, _span, batchStats, ingrad, scaleGrad,
                   biasGrad):
    acc = stats.dtype
    mean, invstd = stats[0], stats[1]
    a = scale.astype(acc) * invstd
    g0 = sums[0] / count if batchStats else numpy.zeros_like(mean)
    k = invstd * invstd * sums[1] / count if batchStats else numpy.zeros_like(mean)
    g, v = grad.reshape(-1, maps, spatial).astype(acc), x.reshape(-1, maps, spatial).astype(acc)
    ingrad.reshape(-1, maps, spatial)[...] = a[:, None] * ((g - (v - mean[:, None]) * k[:, None]) - g0[:, None])
    scaleGrad += (sums[1] * invstd).astype(scaleGrad.dtype)
    biasGrad += sums[0].astype(biasGrad.dtype)


# ∂x = a ((grad - (x - mean) k) - g0) with a = scale invstd, and with ``batchStats`` g0 = Σgrad / count and
# k = invstd² Σgrad (x - mean) / count (the totals of ``partialsKer``), else g0 = k = 0; computed in S. The
# element that starts map c's first plane also adds ∂scale[c] += invstd Σgrad (x - mean) and
# ∂bias[c] += Σgrad.
backwardKer = Elementwise(
    "minidl_batchnorm_backward",
    "raw T grad, raw T x, raw S stats, raw S sums, raw T scale, S count, int32 maps, int32 spatial, int32 span, "
    "int32 batchStats",
    "raw T ingrad, raw T scaleGrad, raw T biasGrad",
    BLOCK + "const int c = (int)(plane % maps); "
    "const S m = stats[c], invstd = stats[maps + c], sg = sums[c], sgx = sums[maps + c]; "
    "const S a = (S)scale[c] * invstd, g0 = batchStats ? (S)(sg / count) : (S)0, "
    "k = batchStats ? (S)(invstd * invstd * sgx / count) : (S)0; "
    "if (plane == c && first == 0) { scaleGrad[c] += (T)(sgx * invstd); biasGrad[c] += (T)sg; } "
    "const T* __restrict__ g = &grad[plane * spatial]; const T* __restrict__ v = &x[plane * spatial]; "
    "T* __restrict__ out = &ingrad[plane * spatial]; "
    "for (int s = first; s < last; ++s) out[s] = (T)(a * (((S)g[s] - ((S)v[s] - m) * k) - g0))",
    _backwardNumpy,
    grain="2 * span",
)


def _paramGradsNumpy(sumG, sumGX, invstd, scaleGrad, biasGrad):
    scaleGrad += (sumGX * invstd).astype(scaleGrad.dtype)
    biasGrad += sumG.astype(biasGrad.dtype)


# ∂scale += invstd Σgrad (x - mean), ∂bias += Σgrad: BatchNorm's parameter gradients when no ∂x is asked for.
paramGradsKer = Elementwise(
    "minidl_batchnorm_param_grads",
    "S sumG, S sumGX, S invstd",
    "T scaleGrad, T biasGrad",
    "scaleGrad += (T)(sumGX * invstd); biasGrad += (T)sumG",
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
        self.gradTotals, self.paramGradsAdded = None, False

    def castBuffers(self, dtype):
        """calcMode: the running statistics are kept in float32 at least (float16 would round away the momentum
        updates of a slowly moving mean); the batch statistics are always summed in float32 at least."""
        wide = numpy.promote_types(dtype, numpy.float32)
        self.runningMean, self.runningVar = self.runningMean.astype(wide), self.runningVar.astype(wide)

    def getBufferTable(self):
        """The running statistics, updated in place (a checkpoint may write into them)."""
        return {"mean": self.runningMean, "var": self.runningVar}

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
        if self.train and data.size // self.size < 2:
            raise ModuleError(f"{self!r}: trainMode needs more than one value per map, got shape {data.shape}")

    def updData(self, data):
        data = xp.ascontiguousarray(data)
        acc = self.runningMean.dtype  # float32 at least: float16 sums overflow past 65504
        count = data.size // self.size
        spatial = count // data.shape[0]
        sums = mapTotals(data, data, self.runningMean, shifted=True) if self.train else self.runningMean
        self.stats = xp.empty((2, self.size), dtype=acc)
        self.usedBatchStats = self.train
        values = span(spatial)
        y = xp.empty_like(data)
        forwardKer(data, sums, self.scale, self.bias, count, self.epsilon, self.momentum,
                   count / max(count - 1, 1), self.size, spatial, values, int(self.train), y, self.runningMean,
                   self.runningVar, self.stats, size=elements(data.shape[0] * self.size, spatial, values))
        return y

    def _gradTotals(self, grad):
        """(Σ grad, Σ grad (x - mean)) per map in float32 at least; computed on the first request of a backward
        pass."""
        if self.gradTotals is None:
            self.gradTotals = mapTotals(xp.ascontiguousarray(grad), xp.ascontiguousarray(self.inData),
                                        self.stats[0], shifted=False)
        return self.gradTotals

    def updGrad(self, grad):
        totals, count = self._gradTotals(grad), grad.size // self.size
        spatial = count // grad.shape[0]
        grad, values = xp.ascontiguousarray(grad), span(spatial)
        self.paramGradsAdded = True
        return backwardKer(grad, xp.ascontiguousarray(self.inData), self.stats, totals, self.scale, count, self.size,
                           spatial, values, int(self.usedBatchStats), xp.empty_like(grad),
                           self.vars["scale"].grad, self.vars["bias"].grad,
                           size=elements(grad.shape[0] * self.size, spatial, values))[0]

    def accGradParams(self, grad):
        """Adds the parameters' gradients, unless updGrad's kernel has added them in this pass."""
        if not self.paramGradsAdded:
            totals = self._gradTotals(grad)
            paramGradsKer(totals[0], totals[1], self.stats[1], self.vars["scale"].grad, self.vars["bias"].grad)
