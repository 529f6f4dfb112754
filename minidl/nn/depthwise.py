"""Depthwise convolution, direct: the algorithm of a Conv2D whose groups each see ONE input map.

With C input maps, m = O / C output maps per input map (output map o reads input map c = o / m) and W of
shape (C m, 1, kh, kw), xpad the input with ph, pw rows and columns of zeros on each side:

    y[n, o, oy, ox]   = Σ_{ky, kx} W[o, ky, kx] xpad[n, c, oy sy + ky dy, ox sx + kx dx]
    ∂x[n, c, y, x]    = Σ_{j < m, ky, kx} W[c m + j, ky, kx] grad[n, c m + j, oy, ox]
                        over the taps with oy sy + ky dy = y + ph and ox sx + kx dx = x + pw
    ∂W[o, ky, kx]     = Σ_{n, oy, ox} grad[n, o, oy, ox] xpad[n, c, oy sy + ky dy, ox sx + kx dx]

Each is ONE Elementwise whose CUDA text loops over what it sums, reading the raw input and weights: the forward
over output rows (n, o, oy), its column loop per tap vectorized on the host, the bias added there, or, at stride
1 with "same" columns (2 pw = dx (kw - 1)), over whole output planes seen as one flat row per tap; ∂x over input
pixels, or, at stride 1 with m = 1 and p <= d (k - 1), the forward on grad padded by d (k - 1) - p with the
window flipped; ∂W over its C m kh kw weights, each a dot product over the batch and positions held in the
kernel's own loop (flat over each plane for "same" columns), so no second pass sums partial results. Nothing is
copied (no padded input, no im2col).
Padded taps multiply zeros, as the padded input would: an infinite weight or gradient there gives NaN, as in
every other Conv2D algorithm. The NumPy references run the same sums by shifted slices of the padded input,
kh kw array operations over the whole batch.
"""

import numpy

from minidl.backend import Elementwise, isGpu, simdSum, xp
from minidl.nn.gradsum import sumInto
from minidl.nn.im2col import ROW_RANGE, SAME_RANGE, Window, columns, isSame

GEOMETRY = ("int32 batch, int32 maps, int32 mult, int32 h, int32 w, int32 kh, int32 kw, int32 sy, int32 sx, "
            "int32 ph, int32 pw, int32 dy, int32 dx, int32 outH, int32 outW")


def tapSlices(kh, kw, sy, sx, dy, dx, outH, outW):
    """For each tap (ky, kx): (ky, kx, rows, cols), the padded input's strided slices it reads."""
    for ky in range(kh):
        for kx in range(kw):
            yield (ky, kx, slice(ky * dy, ky * dy + sy * (outH - 1) + 1, sy),
                   slice(kx * dx, kx * dx + sx * (outW - 1) + 1, sx))


def padImages(images, ph, pw):
    """images (N, C, H, W) with ph rows and pw columns of zeros on each side (NumPy)."""
    if ph == 0 and pw == 0:
        return images
    return numpy.pad(images, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _forwardNumpy(rowBias, x, weights, batch, maps, mult, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW, y):
    padded = padImages(x, ph, pw)[:, :, None]  # (N, C, 1, H', W'): broadcast over the m outputs
    taps = weights.reshape(maps, mult, kh, kw)
    out = y.reshape(batch, maps, mult, outH, outW)
    out.fill(0)
    for ky, kx, rows, cols in tapSlices(kh, kw, sy, sx, dy, dx, outH, outW):
        out += taps[:, :, ky, kx, None, None] * padded[:, :, :, rows, cols]
    out += rowBias.reshape(batch, maps, mult, outH, 1)


# One element per output ROW (n, o, oy): per tap, the loop over ox reads the input row contiguously (stride 1),
# which the host compiler vectorizes; the row's range of ox inside the image is found once per tap. Measured
# (8x128x28x28, 3x3, CPU ms, one run): 3.0 against 8.0 for the NumPy slices; one element per output pixel,
# decoding its index at every pixel, was 3.5x slower than the slices; blocks of 8 columns summing all the taps
# in registers, 4.5.
depthwiseForwardKer = Elementwise(
    "minidl_depthwise_forward",
    "T rowBias, raw T x, raw T weights, " + GEOMETRY,
    "raw T y",
    "const int oy = i % outH; const long long plane = i / outH; const int o = plane % (maps * mult); "
    "const long long image = plane / (maps * mult); "
    "const T* src = &x[(image * maps + o / mult) * h * w]; const T* tap = &weights[(long long)o * kh * kw]; "
    "T* __restrict__ out = &y[(long long)i * outW]; "
    "for (int ox = 0; ox < outW; ++ox) out[ox] = (T)0; "
    "for (int ky = 0; ky < kh; ++ky) { "
    "  const int yy = oy * sy - ph + ky * dy; "
    "  for (int kx = 0; kx < kw; ++kx) { "
    "    const T weight = tap[ky * kw + kx]; const T padded = weight * (T)0; "  # a padded tap: NaN if weight is inf
    + ROW_RANGE +
    "    if (yy < 0 || yy >= h) { for (int ox = 0; ox < outW; ++ox) out[ox] += padded; continue; } "
    "    const T* __restrict__ row = src + (long long)yy * w + off; "
    "    for (int ox = 0; ox < lo; ++ox) out[ox] += padded; "
    "    if (sx == 1) { for (int ox = lo; ox < hi; ++ox) out[ox] += weight * row[ox]; } "
    "    else { for (int ox = lo; ox < hi; ++ox) out[ox] += weight * row[ox * sx]; } "
    "    for (int ox = hi; ox < outW; ++ox) out[ox] += padded; "
    "  } "
    "} "
    "for (int ox = 0; ox < outW; ++ox) out[ox] += rowBias",
    _forwardNumpy,
    grain="outW * kh * kw",
)


def _sameNumpy(x, weights, bias, column, *geometryAndOut):
    *geometry, y = geometryAndOut
    batch, maps, mult, outH = geometry[0], geometry[1], geometry[2], geometry[-2]
    _forwardNumpy(numpy.broadcast_to(bias.reshape(1, -1, 1), (batch, maps * mult, outH)), x, weights, *geometry, y)


# Stride 1 with as many output as input columns ("same" padding), one element per output (n, o) PLANE: a tap adds
# weight x[n, c] shifted by (ky dy - ph) w + kx dx - pw to the plane seen as one flat row, over all the rows it
# reads inside the image at once, so the loop runs over whole planes instead of rows of w. Where the flat shift
# wraps to the neighbouring row, the pixel's column (``column``: p mod w per plane position) lies outside the
# tap's columns [lo, hi) and a select adds the padded tap instead; every pixel sums its taps in (ky, kx) order, as
# the row kernel and the NumPy reference do. Measured (8x128x28x28, 3x3, 1 core): 0.9 ms against 2.8 by rows.
depthwiseSameKer = Elementwise(
    "minidl_depthwise_same",
    "raw T x, raw T weights, raw T bias, raw int32 column, " + GEOMETRY,
    "raw T y",
    "const int o = i % (maps * mult); const long long image = i / (maps * mult); "
    "const T* __restrict__ src = &x[(image * maps + o / mult) * h * w]; "
    "const T* tap = &weights[(long long)o * kh * kw]; "
    "const long long plane = (long long)outH * w; T* __restrict__ out = &y[i * plane]; "
    "const int* __restrict__ cols = &column[0]; "
    "for (long long p = 0; p < plane; ++p) out[p] = (T)0; "
    "for (int ky = 0; ky < kh; ++ky) { "
    "  for (int kx = 0; kx < kw; ++kx) { "
    "    const T weight = tap[ky * kw + kx]; const T padded = weight * (T)0; "
    + SAME_RANGE +
    "    for (long long p = 0; p < first; ++p) out[p] += padded; "
    "    for (long long p = first; p < last; ++p) { "
    "      const int col = cols[p]; const T value = src[p + shift]; "
    "      if (col >= lo && col < hi) out[p] += weight * value; else out[p] += padded; "
    "    } "
    "    for (long long p = last; p < plane; ++p) out[p] += padded; "
    "  } "
    "} "
    "for (long long p = 0; p < plane; ++p) out[p] += bias[o]",
    _sameNumpy,
    grain="outH * w * kh * kw",
)


def _sameGradWeightsNumpy(grad, x, column, *geometryAndOut):
    _gradWeightsNumpy(grad, x, *geometryAndOut)


# ∂W at stride 1 with "same" columns, one element per weight (o, ky, kx) as the row kernel, but each image's sum one
# flat loop over the plane (the same ranges and column test as depthwiseSameKer), vectorized by simdSum.
depthwiseSameGradWeightsKer = Elementwise(
    "minidl_depthwise_same_grad_weights",
    "raw T grad, raw T x, raw int32 column, " + GEOMETRY,
    "T gradW",
    "const int kx = i % kw; const int ky = i / kw % kh; const int o = i / (kw * kh); const int c = o / mult; "
    + SAME_RANGE +
    "const long long plane = (long long)outH * w; const int* __restrict__ cols = &column[0]; T sum = (T)0; "
    "for (long long image = 0; image < batch; ++image) { "
    "  const T* __restrict__ src = &x[(image * maps + c) * h * w]; "
    "  const T* __restrict__ g = &grad[(image * maps * mult + o) * plane]; "
    "  for (long long p = 0; p < first; ++p) sum += g[p] * (T)0; "
    "  for (long long p = last; p < plane; ++p) sum += g[p] * (T)0; "
    + simdSum("sum") +
    "  for (long long p = first; p < last; ++p) { "
    "    const int col = cols[p]; const T value = src[p + shift]; "
    "    sum += g[p] * ((col >= lo && col < hi) ? value : (T)0); "
    "  } "
    "} "
    "gradW = sum",
    _sameGradWeightsNumpy,
    grain="batch * outH * w",
)


def _gradInputNumpy(grad, weights, batch, maps, mult, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW, gradX):
    height, width = h + 2 * ph + kh * dy + sy, w + 2 * pw + kw * dx + sx  # room for every tap's slice
    padded = numpy.zeros((batch, maps, height, width), dtype=gradX.dtype)
    taps = weights.reshape(maps, mult, kh, kw)
    grad = grad.reshape(batch, maps, mult, outH, outW)
    for ky, kx, rows, cols in tapSlices(kh, kw, sy, sx, dy, dx, outH, outW):
        for j in range(mult):
            padded[:, :, rows, cols] += taps[:, j, ky, kx, None, None] * grad[:, :, j]
    gradX[...] = padded[:, :, ph:ph + h, pw:pw + w]


depthwiseGradInputKer = Elementwise(
    "minidl_depthwise_grad_input",
    "raw T grad, raw T weights, " + GEOMETRY,
    "T gradX",
    "const int x = i % w + pw; const int y = i / w % h + ph; const long long plane = i / ((long long)w * h); "
    "const int c = plane % maps; const long long image = plane / maps; "
    "T sum = (T)0; "
    "for (int ky = 0; ky < kh; ++ky) { "
    "  const int yy = y - ky * dy; "
    "  if (yy < 0 || yy % sy != 0 || yy / sy >= outH) continue; "
    "  for (int kx = 0; kx < kw; ++kx) { "
    "    const int xx = x - kx * dx; "
    "    if (xx < 0 || xx % sx != 0 || xx / sx >= outW) continue; "
    "    for (int j = 0; j < mult; ++j) { "
    "      const long long o = (long long)c * mult + j; "
    "      sum += weights[(o * kh + ky) * kw + kx] "
    "             * grad[((image * maps * mult + o) * outH + yy / sy) * outW + xx / sx]; "
    "    } "
    "  } "
    "} "
    "gradX = sum",
    _gradInputNumpy,
    cpuPath="numpy",  # 28 ms against 8 ms by slices (8x128x28x28, 3x3): it decodes its index at every pixel
)


def _gradWeightsNumpy(grad, x, batch, maps, mult, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW, gradW):
    padded = padImages(x, ph, pw)
    grad = grad.reshape(batch, maps, mult, outH, outW)
    out = gradW.reshape(maps, mult, kh, kw)
    for ky, kx, rows, cols in tapSlices(kh, kw, sy, sx, dy, dx, outH, outW):
        out[:, :, ky, kx] = (grad * padded[:, :, None, rows, cols]).sum(axis=(0, 3, 4))


depthwiseGradWeightsKer = Elementwise(
    "minidl_depthwise_grad_weights",
    "raw T grad, raw T x, " + GEOMETRY,
    "T gradW",
    "const int kx = i % kw; const int ky = i / kw % kh; const int o = i / (kw * kh); const int c = o / mult; "
    + ROW_RANGE +
    "T edge = (T)0, sum = (T)0; "
    "for (long long image = 0; image < batch; ++image) { "
    "  const T* src = &x[(image * maps + c) * h * w]; "
    "  for (int oy = 0; oy < outH; ++oy) { "
    "    const T* __restrict__ g = &grad[((image * maps * mult + o) * outH + oy) * outW]; "
    "    const int yy = oy * sy - ph + ky * dy; "
    "    if (yy < 0 || yy >= h) { for (int ox = 0; ox < outW; ++ox) edge += g[ox] * (T)0; continue; } "
    "    const T* __restrict__ row = src + (long long)yy * w + off; "
    "    for (int ox = 0; ox < lo; ++ox) edge += g[ox] * (T)0; "
    "    for (int ox = hi; ox < outW; ++ox) edge += g[ox] * (T)0; "
    "    if (sx == 1) { "
    + simdSum("sum") +
    "      for (int ox = lo; ox < hi; ++ox) sum += g[ox] * row[ox]; "
    "    } else { for (int ox = lo; ox < hi; ++ox) sum += g[ox] * row[ox * sx]; } "
    "  } "
    "} "
    "gradW = edge + sum",
    _gradWeightsNumpy,
    grain="batch * outH * outW",
)


def _gradWeightRowsNumpy(grad, x, batch, maps, mult, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW, parts):
    padded = padImages(x, ph, pw)
    grad = grad.reshape(batch, maps, mult, outH, outW)
    out = parts.reshape(maps, mult, kh, kw, batch, outH)
    for ky, kx, rows, cols in tapSlices(kh, kw, sy, sx, dy, dx, outH, outW):
        out[:, :, ky, kx] = (grad * padded[:, :, None, rows, cols]).sum(axis=4).transpose(1, 2, 0, 3)


# ∂W on a GPU, by parts: parts[o, ky, kx, n, oy] = Σ_ox grad[n, o, oy, ox] x[n, c, oy sy - ph + ky dy, ox sx - pw
# + kx dx] (padding reads 0, times grad so that NaN and infinities in grad stay), one element per (weight, image,
# output row): a thread walks one row, where the row kernel's thread walked every image's plane. ``sumInto`` then
# adds each weight's N outH parts into W.grad.
depthwiseGradWeightRowsKer = Elementwise(
    "minidl_depthwise_grad_weight_rows",
    "raw T grad, raw T x, " + GEOMETRY,
    "raw T parts",
    "const int oy = (int)(i % outH); const long long image = i / outH % batch; "
    "const long long weight = i / ((long long)outH * batch); "
    "const int kx = (int)(weight % kw), ky = (int)(weight / kw % kh); const long long o = weight / (kw * kh); "
    "const long long c = o / mult; "
    + ROW_RANGE +
    "const T* __restrict__ g = &grad[((image * maps * mult + o) * outH + oy) * outW]; "
    "const int yy = oy * sy - ph + ky * dy; T sum = (T)0; "
    "if (yy < 0 || yy >= h) { for (int ox = 0; ox < outW; ++ox) sum += g[ox] * (T)0; } "
    "else { "
    "  const T* __restrict__ row = &x[((image * maps + c) * h + yy) * w + off]; "
    "  for (int ox = 0; ox < lo; ++ox) sum += g[ox] * (T)0; "
    "  if (sx == 1) { for (int ox = lo; ox < hi; ++ox) sum += g[ox] * row[ox]; } "
    "  else { for (int ox = lo; ox < hi; ++ox) sum += g[ox] * row[ox * sx]; } "
    "  for (int ox = hi; ox < outW; ++ox) sum += g[ox] * (T)0; "
    "} "
    "parts[i] = sum",
    _gradWeightRowsNumpy,
    grain="outW",
)


def _scalars(window, batch, maps, mult, height, width):
    (kh, kw), (sy, sx), (ph, pw), (dy, dx) = window.size, window.stride, window.pad, window.dilation
    outH, outW = window.outShape(height, width, "depthwise convolution")
    return batch, maps, mult, height, width, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW


def depthwiseForward(images, weights, window, bias=None):
    """y (N, C m, outH, outW) of images (N, C, H, W), weights (C m, 1, kh, kw) and bias (C m,) or None: on the
    CPU by planes at stride 1 with "same" columns, else by rows; on a GPU always by rows (a thread per plane would
    walk it alone)."""
    batch, maps, height, width = images.shape
    scalars = _scalars(window, batch, maps, weights.shape[0] // maps, height, width)
    out = xp.empty((batch, weights.shape[0], *scalars[-2:]), dtype=images.dtype)
    if isSame(window) and not isGpu:
        bias = xp.zeros(weights.shape[0], dtype=out.dtype) if bias is None else bias
        return depthwiseSameKer(xp.ascontiguousarray(images), xp.ascontiguousarray(weights), bias,
                                columns(scalars[-2], width), *scalars, out, size=out.shape[0] * out.shape[1])
    rowBias = xp.zeros(out.shape[:3], dtype=out.dtype)
    if bias is not None:
        rowBias += bias.reshape(-1, 1)
    depthwiseForwardKer(rowBias, xp.ascontiguousarray(images), xp.ascontiguousarray(weights), *scalars, out)
    return out


def depthwiseGradInput(grad, weights, window, inShape):
    """∂images (inShape: N, C, H, W) of grad (N, C m, outH, outW). With stride 1, m = 1 and pad <= d (k - 1):
    the forward kernel on grad padded by d (k - 1) - p with the window flipped, ∂x[n, c, y, x] = Σ W[c, kh-1-ky,
    kw-1-kx] gradpad[n, c, y + ky dy, x + kx dx] (row-wise, like the forward); otherwise a sum per input pixel."""
    batch, maps, height, width = inShape
    pads = [d * (k - 1) - p for k, p, d in zip(window.size, window.pad, window.dilation)]
    if window.stride == (1, 1) and weights.shape[0] == maps and min(pads) >= 0:
        flipped = xp.ascontiguousarray(weights[:, :, ::-1, ::-1])
        full = window.remembered("full window", lambda: Window(window.size, 1, pads, window.dilation))
        return depthwiseForward(grad, flipped, full)
    scalars = _scalars(window, batch, maps, weights.shape[0] // maps, height, width)
    gradX = xp.empty(inShape, dtype=grad.dtype)
    return depthwiseGradInputKer(xp.ascontiguousarray(grad), xp.ascontiguousarray(weights), *scalars, gradX)


def addDepthwiseGradWeights(grad, images, window, out):
    """out (C m, 1, kh, kw) += ∂W of grad (N, C m, outH, outW) at images (N, C, H, W): on a GPU by rows (a part
    per weight, image and output row) summed into out by one reduction; on the CPU ``depthwiseGradWeights``."""
    if not isGpu:
        out += depthwiseGradWeights(grad, images, window)
        return out
    batch, maps, height, width = images.shape
    scalars = _scalars(window, batch, maps, grad.shape[1] // maps, height, width)
    parts = xp.empty((out.size, batch * scalars[-2]), dtype=grad.dtype)
    depthwiseGradWeightRowsKer(xp.ascontiguousarray(grad), xp.ascontiguousarray(images), *scalars, parts,
                               size=parts.size)
    return sumInto(parts, out.reshape(-1), axis=1)


def depthwiseGradWeights(grad, images, window):
    """∂W (C m, 1, kh, kw) of grad (N, C m, outH, outW) at images (N, C, H, W), on the CPU: a weight per
    element, by planes at stride 1 with "same" columns, else by rows."""
    batch, maps, height, width = images.shape
    scalars = _scalars(window, batch, maps, grad.shape[1] // maps, height, width)
    gradW = xp.empty((grad.shape[1], 1, *window.size), dtype=grad.dtype)
    grad, images = xp.ascontiguousarray(grad), xp.ascontiguousarray(images)
    if isSame(window):
        return depthwiseSameGradWeightsKer(grad, images, columns(scalars[-2], width), *scalars, gradW)
    return depthwiseGradWeightsKer(grad, images, *scalars, gradW)
