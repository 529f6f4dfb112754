"""gather2d and its adjoint scatter2d: each map of (N, C, H, W) data read at a row index per output row and a
column index per output column, the copy behind Pad2D's reflect and replicate modes and nearest upsampling.

    y[n, c, oy, ox] = x[n, c, rows[oy], cols[ox]]          (outH = len(rows), outW = len(cols))
    ∂x[n, c, r, q]  = Σ_{oy: rows[oy] = r, ox: cols[ox] = q} grad[n, c, oy, ox]

gather2d runs over blocks of output rows of the (n, c) planes (a whole plane per element on the CPU, a row on
the GPU); scatter2d over (n, c) planes, each adding its outputs' gradients in raster order onto the pixels
they were read from (several outputs may read one pixel, and only this element writes the plane).
"""

import numpy

from minidl.backend import Elementwise, toDevice, valuesPerElement, xp


def _gatherNumpy(x, rows, cols, h, w, outH, outW, _rowsPerElement, y):
    y[...] = x.reshape(-1, h, w)[:, rows][:, :, cols].reshape(y.shape)


gatherKer = Elementwise(
    "minidl_gather2d",
    "raw T x, raw int32 rows, raw int32 cols, int32 h, int32 w, int32 outH, int32 outW, int32 rowsPer",
    "raw T y",
    "const int blocks = (outH + rowsPer - 1) / rowsPer; const int first = i % blocks * rowsPer; "
    "const long long plane = i / blocks; "
    "for (int oy = first; oy < min(outH, first + rowsPer); ++oy) { "
    "  const T* __restrict__ src = &x[(plane * h + rows[oy]) * w]; "
    "  T* __restrict__ out = &y[(plane * outH + oy) * outW]; "
    "  for (int ox = 0; ox < outW; ++ox) out[ox] = src[cols[ox]]; "
    "}",
    _gatherNumpy,
    grain="rowsPer * outW",
)


def _scatterNumpy(grad, rows, cols, h, w, outH, outW, gradX):
    out = gradX.reshape(-1, h, w)
    out.fill(0)
    planes = grad.reshape(-1, outH, outW)
    for oy in range(outH):
        numpy.add.at(out, (slice(None), rows[oy], cols), planes[:, oy])  # repeated columns add up


scatterKer = Elementwise(
    "minidl_scatter2d",
    "raw T grad, raw int32 rows, raw int32 cols, int32 h, int32 w, int32 outH, int32 outW",
    "raw T gradX",
    "T* __restrict__ out = &gradX[i * h * w]; "
    "for (long long pixel = 0; pixel < (long long)h * w; ++pixel) out[pixel] = (T)0; "
    "for (int oy = 0; oy < outH; ++oy) { "
    "  const T* __restrict__ g = &grad[(i * outH + oy) * outW]; T* dst = out + (long long)rows[oy] * w; "
    "  for (int ox = 0; ox < outW; ++ox) dst[cols[ox]] += g[ox]; "
    "}",
    _scatterNumpy,
    grain="h * w + outH * outW",
)


def indices(values):
    """A host sequence of indices as the kernels' int32 device array."""
    return toDevice(numpy.asarray(values, dtype=numpy.int32))


def gather2d(x, rows, cols):
    """y (N, C, len(rows), len(cols)) with y[..., oy, ox] = x[..., rows[oy], cols[ox]] (int32 device arrays)."""
    x = xp.ascontiguousarray(x)
    batch, maps, height, width = x.shape
    outH, outW = len(rows), len(cols)
    y = xp.empty((batch, maps, outH, outW), dtype=x.dtype)
    per = valuesPerElement(outH)
    return gatherKer(x, rows, cols, height, width, outH, outW, per, y, size=batch * maps * -(-outH // per))


def scatter2d(grad, rows, cols, height, width):
    """∂x (N, C, height, width) of gather2d's output gradient grad (N, C, len(rows), len(cols))."""
    grad = xp.ascontiguousarray(grad)
    batch, maps = grad.shape[:2]
    gradX = xp.empty((batch, maps, height, width), dtype=grad.dtype)
    return scatterKer(grad, rows, cols, height, width, *grad.shape[2:], gradX, size=batch * maps)
