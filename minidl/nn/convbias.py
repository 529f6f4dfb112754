"""A convolution's bias carried by its matrix products on a GPU, so that Conv2D with a bias still takes six launches a
step: no launch adds the bias and none sums its gradient.

im2col writes, per image and group g, col rows C/G kh kw + 1: the window's taps, then a row of ones; and it presets
the output with the bias, y[n, o, p] = b[o]. The forward product then adds W col[:, :, :-1] into y (beta = 1,
``minidl.backend.products``). Backward, the per-image products of ∂W read the whole col:

    P[n, g, a, k] = Σ_p grad[n, g, a, p] col[n, g, k, p],    P[n, g, a, last] = Σ_p grad[n, g, a, p]

and one kernel sums them over the batch, adding ∂W += Σ_n P[n, :, :, :-1] and ∂b += Σ_n P[n, :, :, last] (in double,
rounded once, as ``sumInto``). Both kernels give a GPU thread one value: one col or output value each for im2col,
one parameter gradient (its sum over the batch's images) for the sums. The CPU keeps its own geometry (a bias added
and summed apart): there a launch costs nothing, a pass over y does. So where the CPU takes one product over the
batch (small maps: y comes out (maps, N, outH outW)), one kernel puts y back in NCHW order and adds the bias
(``unwideWithBias``).
"""

import numpy

from minidl.backend import Elementwise, scratch, valuesPerElement, xp
from minidl.nn.im2col import im2colNumpy

LONGEST_BATCH = 512  # images one thread of addParamGradsKer sums at most


def _im2colWithBiasNumpy(img, bias, groups, maps, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW, outMaps,
                         _colValues, _outValues, col, out):
    """im2col's own reference gathers the taps (into a scratch buffer of its per-image layout); the rows of ones
    follow each group's taps."""
    batch, points = img.shape[0], outH * outW
    taps = scratch((batch, maps, kh, kw, outH, outW), col.dtype, "im2col with bias: taps")
    im2colNumpy(img, batch, maps, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW, 0, kh * kw, outH, outW,
                maps * kh * kw * points, points, taps)
    rows = col.reshape(batch, groups, maps // groups * kh * kw + 1, points)
    rows[:, :, :-1] = taps.reshape(batch, groups, -1, points)
    rows[:, :, -1] = 1
    out.reshape(batch, outMaps, points)[...] = bias.reshape(outMaps, 1)


# One thread per value of col (N, G, C/G kh kw + 1, outH outW) and per value of out (N, O, outH, outW): size
# max(colValues, outValues).
im2colWithBiasKer = Elementwise(
    "minidl_im2col_with_bias",
    "raw T img, raw T bias, int32 groups, int32 maps, int32 h, int32 w, int32 kh, int32 kw, int32 sy, int32 sx, "
    "int32 ph, int32 pw, int32 dy, int32 dx, int32 outH, int32 outW, int32 outMaps, int64 colValues, "
    "int64 outValues",
    "raw T col, raw T out",
    "const long long points = (long long)outH * outW; "
    "const int groupRows = maps / groups * kh * kw + 1; "
    "if (i < colValues) { "
    "  const long long image = i / (points * groups * groupRows); "
    "  const int row = (int)(i / points % ((long long)groups * groupRows)); "
    "  const int g = row / groupRows, r = row % groupRows; "
    "  T value = (T)1; "  # the row of ones
    "  if (r < groupRows - 1) { "
    "    const int c = g * (maps / groups) + r / (kh * kw), t = r % (kh * kw); "
    "    const int oy = (int)(i % points / outW), ox = (int)(i % outW); "
    "    const int y = oy * sy - ph + t / kw * dy, x = ox * sx - pw + t % kw * dx; "
    "    value = (y >= 0 && y < h && x >= 0 && x < w) ? img[((image * maps + c) * h + y) * w + x] : (T)0; "
    "  } "
    "  col[i] = value; "
    "} "
    "if (i < outValues) out[i] = bias[i / points % outMaps];",
    _im2colWithBiasNumpy,
)


def _addParamGradsNumpy(products, batch, inner, values, gradW, gradB):
    sums = products.reshape(batch, -1, inner + 1).astype(numpy.float64).sum(axis=0)
    flatW = gradW.reshape(-1, inner)
    flatW[...] = (flatW.astype(numpy.float64) + sums[:, :inner]).astype(gradW.dtype)
    gradB[...] = (gradB.astype(numpy.float64) + sums[:, inner]).astype(gradB.dtype)


# One thread per parameter gradient, (O, C/G kh kw + 1) values: each sums its ``batch`` per-image products.
addParamGradsKer = Elementwise(
    "minidl_conv_add_param_grads",
    "raw T products, int32 batch, int32 inner, int64 values",
    "raw T gradW, raw T gradB",
    "double sum = 0; "
    "for (int n = 0; n < batch; ++n) sum += (double)products[n * values + i]; "
    "const long long o = i / (inner + 1); const int k = (int)(i % (inner + 1)); "
    "if (k < inner) gradW[o * inner + k] = (T)((double)gradW[o * inner + k] + sum); "
    "else gradB[o] = (T)((double)gradB[o] + sum);",
    _addParamGradsNumpy,
)


def im2colWithBias(data, window, groups, bias, outmaps):
    """(col, out) for data (N, C, H, W): col (N, G, C/G kh kw + 1, outH outW) with its rows of ones, out (N,
    outmaps, outH, outW) preset to the bias."""
    batch, maps, height, width = data.shape
    (kh, kw), (outH, outW) = window.size, window.outShape(height, width, "im2col")
    col = xp.empty((batch, groups, maps // groups * kh * kw + 1, outH * outW), dtype=data.dtype)
    out = xp.empty((batch, outmaps, outH, outW), dtype=data.dtype)
    im2colWithBiasKer(data, bias, groups, maps, height, width, kh, kw, *window.stride, *window.pad, *window.dilation,
                      outH, outW, outmaps, col.size, out.size, col, out, size=max(col.size, out.size))
    return col, out


def addParamGrads(products, gradW, gradB):
    """gradW (O, C/G kh kw) += Σ_n products[n, :, :, :-1], gradB (O,) += Σ_n products[n, :, :, -1], for the
    per-image products (N, G, O/G, C/G kh kw + 1) of grad and col: one launch per LONGEST_BATCH images, so that no
    thread walks a long axis alone (each launch's sums rounded once into the gradients)."""
    batch, inner = products.shape[0], products.shape[-1] - 1
    values = products.size // batch
    for start in range(0, batch, LONGEST_BATCH):
        part = products[start:start + LONGEST_BATCH]
        addParamGradsKer(part, part.shape[0], inner, values, gradW, gradB, size=values)


def _unwideBiasNumpy(product, bias, batch, maps, points, _rows, _span, out):
    out.reshape(batch, maps, points)[...] = product.reshape(maps, batch, points).transpose(1, 0, 2) + bias[:, None]


# y[n, o, p] = product[o, n, p] + b[o]: one element per block of ``rows`` maps and ``span`` positions of an image of
# y (the whole image on the CPU, a value on the GPU). The copy back to NCHW and the bias's broadcast add, apart,
# took 33 and 36 us of the digits CNN's 256-image forward on 16 maps of 4x4; a row per element 45 us, an image 18.
unwideBiasKer = Elementwise(
    "minidl_unwide_bias",
    "raw T product, raw T bias, int32 batch, int32 maps, int32 points, int32 rows, int32 span",
    "raw T out",
    "const int rowBlocks = (maps + rows - 1) / rows, spans = (points + span - 1) / span; "
    "const long long image = i / ((long long)rowBlocks * spans); const int block = (int)(i % (rowBlocks * spans)); "
    "const int firstMap = block / spans * rows, first = block % spans * span, last = min(points, first + span); "
    "for (int feature = firstMap; feature < min(maps, firstMap + rows); ++feature) { "
    "  const T b = bias[feature]; "
    "  const T* __restrict__ src = &product[((long long)feature * batch + image) * points]; "
    "  T* __restrict__ dst = &out[(image * maps + feature) * points]; "
    "  for (int p = first; p < last; ++p) dst[p] = src[p] + b; "
    "}",
    _unwideBiasNumpy,
    grain="rows * span",
)


def unwideWithBias(product, bias, shape):
    """y of ``shape`` (N, maps, outH, outW) from a product over the batch (contiguous, read as (maps, N, outH outW))
    and the bias (maps,): y[n, o] = product[o, n] + bias[o]."""
    batch, maps, outH, outW = shape
    points = outH * outW
    rows, span = valuesPerElement(maps), valuesPerElement(points)
    return unwideBiasKer(product, bias, batch, maps, points, rows, span, xp.empty(shape, dtype=product.dtype),
                         size=batch * -(-maps // rows) * -(-points // span))
