"""MaxPool2D: y = the maximum of each window (padding never wins: it is -inf; a NaN in the window wins, as in
NumPy's max); the gradient goes to the window's first maximal tap only.

Both directions are direct Elementwise kernels reading the input or the gradient raw. The forward runs over
blocks of output rows of the (n, c) planes (a whole plane per element on the CPU, a row on the GPU;
``valuesPerElement``) and keeps, per output, the winning tap ky kw + kx (``argmax``): tap by tap over a row where
the row is wide enough for the host's vectors (and on the GPU); where it is narrower, tap by tap over the outputs
of a group of planes (a gather per tap) where no window reads padding, else window by window. Backward runs over
(n, c) planes on the CPU, each output adding its gradient to the pixel its winning tap read, and over pixels on the GPU,
each gathering the gradients of the outputs whose winning tap read it. No im2col copy of the windows, no col2im.
"""

import numpy

from minidl.backend import Elementwise, isGpu, valuesPerElement, xp
from minidl.nn.im2col import GATHER_OUTPUTS, ROW_RANGE, VECTOR, col2imNumpy, gatherSources, im2colNumpy
from minidl.nn.pool2d import Pool2D

GEOMETRY = ("int32 batch, int32 maps, int32 h, int32 w, int32 kh, int32 kw, int32 sy, int32 sx, int32 ph, int32 pw, "
            "int32 dy, int32 dx, int32 outH, int32 outW")


def _maxPoolNumpy(x, *geometryAndOut):
    *geometry, padValue, rows, y, argmax = geometryAndOut
    batch, maps, _, _, kh, kw, *_, outH, outW = geometry
    col = numpy.empty((batch, maps, kh, kw, outH, outW), dtype=x.dtype)
    points = outH * outW
    im2colNumpy(x, *geometry, padValue, 1, rows, 1, maps * kh * kw * points, points, col)
    col = col.reshape(batch * maps, kh * kw, outH * outW)
    winners = col.argmax(axis=1)[:, None]  # NaN wins, the first of equals wins (of -0.0 and 0.0 too)
    argmax[...] = winners.reshape(argmax.shape)
    y[...] = numpy.take_along_axis(col, winners, axis=1).reshape(y.shape)


# Tap by tap over a whole output row (ROW_RANGE: the columns whose window reads inside the image), so the loop
# over the row's columns vectorizes, comparing by selects: 0.6 ms for 32x16x32x32, 2x2, against 2.0 ms per output
# window.
WINS = ("{ const bool wins = (at[ox] < 0) | (v > best[ox]) | ((v != v) & (best[ox] == best[ox])); "
        "best[ox] = wins ? v : best[ox]; at[ox] = wins ? tap : at[ox]; } ")
maxPoolKer = Elementwise(
    "minidl_max_pool",
    "raw T x, " + GEOMETRY + ", T padValue, int32 rows",
    "raw T y, raw int32 argmax",
    "const int blocks = (outH + rows - 1) / rows; const int first = i % blocks * rows; "
    "const long long plane = i / blocks; const T* src = &x[plane * h * w]; "
    "for (int oy = first; oy < min(outH, first + rows); ++oy) { "
    "  T* __restrict__ best = &y[(plane * outH + oy) * outW]; "
    "  int* __restrict__ at = &argmax[(plane * outH + oy) * outW]; "
    "  for (int ox = 0; ox < outW; ++ox) { best[ox] = padValue; at[ox] = -1; } "
    "  for (int ky = 0; ky < kh; ++ky) { "
    "    const int yy = oy * sy - ph + ky * dy; "
    "    for (int kx = 0; kx < kw; ++kx) { "
    "      const int tap = ky * kw + kx; "
    + ROW_RANGE +
    "      if (yy < 0 || yy >= h) { "
    "        for (int ox = 0; ox < outW; ++ox) { const T v = padValue; " + WINS + "} "
    "        continue; "
    "      } "
    "      const T* __restrict__ row = src + (long long)yy * w + off; "
    "      for (int ox = 0; ox < lo; ++ox) { const T v = padValue; " + WINS + "} "
    "      for (int ox = lo; ox < hi; ++ox) { const T v = row[ox * sx]; " + WINS + "} "
    "      for (int ox = hi; ox < outW; ++ox) { const T v = padValue; " + WINS + "} "
    "    } "
    "  } "
    "}",
    _maxPoolNumpy,
    grain="rows * outW * kh * kw",
)


# Window by window, each output's taps in (ky, kx) order in registers: for rows narrower than the host's vectors,
# where the tap-by-tap loop above runs scalar and branches on every comparison (random data mispredicts half of
# them). Its comparison is marked unpredictable, so the host compiler selects instead of branching; a NaN is
# remembered by its first tap and wins at the end. 2x2 pooling of 256x8x8x8 (rows of 4) took 0.85 ms tap by tap,
# 0.37 ms window by window; on rows of 16 (32x16x32x32) window by window ran 1.3x slower than tap by tap.
UNPREDICTABLE = (
    "#ifdef __CUDACC__\n#define MINIDL_UNPREDICTABLE(condition) (condition)\n"
    "#else\n#define MINIDL_UNPREDICTABLE(condition) __builtin_expect_with_probability((condition), 1, 0.5)\n#endif\n"
)
TAP_VALUE = "((yy >= 0 && yy < h && xx >= 0 && xx < w) ? src[(long long)yy * w + xx] : padValue)"
maxPoolWindowsKer = Elementwise(
    "minidl_max_pool_windows",
    "raw T x, " + GEOMETRY + ", T padValue, int32 rows",
    "raw T y, raw int32 argmax",
    "const int blocks = (outH + rows - 1) / rows; const int first = i % blocks * rows; "
    "const long long plane = i / blocks; const T* __restrict__ src = &x[plane * h * w]; "
    "for (int oy = first; oy < min(outH, first + rows); ++oy) { "
    "  T* __restrict__ best = &y[(plane * outH + oy) * outW]; "
    "  int* __restrict__ at = &argmax[(plane * outH + oy) * outW]; "
    "  for (int ox = 0; ox < outW; ++ox) { "
    "    T top = padValue; int winner = 0, firstNan = -1; "
    "    for (int ky = 0; ky < kh; ++ky) { "
    "      const int yy = oy * sy - ph + ky * dy; "
    "      for (int kx = 0; kx < kw; ++kx) { "
    "        const int xx = ox * sx - pw + kx * dx, tap = ky * kw + kx; "
    "        const T v = " + TAP_VALUE + "; "
    "        const bool wins = MINIDL_UNPREDICTABLE(v > top); "
    "        winner = wins ? tap : winner; top = wins ? v : top; "
    "        firstNan = (firstNan < 0) & (v != v) ? tap : firstNan; "
    "      } "
    "    } "
    "    if (firstNan >= 0) { "
    "      const int yy = oy * sy - ph + firstNan / kw * dy, xx = ox * sx - pw + firstNan % kw * dx; "
    "      winner = firstNan; top = " + TAP_VALUE + "; "
    "    } "
    "    best[ox] = top; at[ox] = winner; "
    "  } "
    "}",
    _maxPoolNumpy,
    preamble=UNPREDICTABLE,
    grain="rows * outW * kh * kw",
)


def _maxPoolGatherNumpy(x, starts, planes, group, h, w, kh, kw, dy, dx, points, y, argmax):
    shifts = [ky * dy * w + kx * dx for ky in range(kh) for kx in range(kw)]
    taps = x.reshape(planes, h * w)[:, starts[:points, None] + numpy.array(shifts)]  # (planes, points, taps)
    winners = taps.argmax(axis=2)[..., None]  # NaN wins, the first of equals wins
    argmax.reshape(planes, points)[...] = winners[..., 0]
    y.reshape(planes, points)[...] = numpy.take_along_axis(taps, winners, axis=2)[..., 0]


# Tap by tap over the outputs of a group of whole planes, where no window reads padding: ``starts`` holds each
# output's first tap, flat in the group's planes (p h w + oy sy w + ox sx), so a tap is one gather at a shift and
# the loop over the group's outputs vectorizes however narrow the rows. 2x2 pooling, in a C harness: of 256x8x8x8
# 0.52 ms window by window, 0.075 ms so; of 256x16x4x4 0.2 and 0.031 ms.
maxPoolGatherKer = Elementwise(
    "minidl_max_pool_gather",
    "raw T x, raw int32 starts, int32 planes, int32 group, int32 h, int32 w, int32 kh, int32 kw, int32 dy, "
    "int32 dx, int32 points",
    "raw T y, raw int32 argmax",
    "const long long first = (long long)i * group; "
    "const int count = (int)min((long long)group, planes - first) * points; "
    "const T* __restrict__ src = &x[first * h * w]; const int* __restrict__ start = &starts[0]; "
    "T* __restrict__ best = &y[first * points]; int* __restrict__ at = &argmax[first * points]; "
    "\n#pragma omp simd\n"
    "for (int o = 0; o < count; ++o) { best[o] = src[start[o]]; at[o] = 0; } "
    "for (int tap = 1; tap < kh * kw; ++tap) { "
    "  const int shift = tap / kw * dy * w + tap % kw * dx; "
    "\n#pragma omp simd\n"
    "  for (int o = 0; o < count; ++o) { "
    "    const T v = src[start[o] + shift]; "
    "    const bool wins = (v > best[o]) | ((v != v) & (best[o] == best[o])); "
    "    best[o] = wins ? v : best[o]; at[o] = wins ? tap : at[o]; "
    "  } "
    "}",
    _maxPoolGatherNumpy,
    grain="group * points * kh * kw",
)


def readsNoPadding(scalars):
    """Whether no window of these ``Window.scalars`` reads padding (none, or a ceil mode's window past the end)."""
    _, _, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW = scalars
    return ph == pw == 0 and (outH - 1) * sy + (kh - 1) * dy < h and (outW - 1) * sx + (kw - 1) * dx < w


def _maxUnpoolNumpy(grad, argmax, *geometryAndOut):
    *geometry, gradX = geometryAndOut
    batch, maps, _, _, kh, kw, *_, outH, outW = geometry
    gradCol = numpy.zeros((batch * maps, kh * kw, outH * outW), dtype=grad.dtype)
    numpy.put_along_axis(gradCol, argmax.reshape(batch * maps, 1, -1), grad.reshape(batch * maps, 1, -1), axis=1)
    points = outH * outW
    col2imNumpy(gradCol.reshape(batch, maps, kh, kw, outH, outW), *geometry, 1, 1, maps * kh * kw * points, points,
                gradX)


# One element per (n, c) plane (size: N C), whose outputs add their gradients, in raster order, to the pixels
# their winning taps read: with overlapping windows a pixel may receive several, and only this element writes
# the plane. A gather per pixel, testing every tap that could have read it, took 4 ms for 32x16x32x32.
maxUnpoolKer = Elementwise(
    "minidl_max_unpool",
    "raw T grad, raw int32 argmax, " + GEOMETRY,
    "raw T gradX",
    "T* __restrict__ plane = &gradX[i * h * w]; "
    "for (long long pixel = 0; pixel < (long long)h * w; ++pixel) plane[pixel] = (T)0; "
    "for (int oy = 0; oy < outH; ++oy) { "
    "  for (int ox = 0; ox < outW; ++ox) { "
    "    const long long out = (i * outH + oy) * outW + ox; const int tap = argmax[out]; "
    "    const int yy = oy * sy - ph + tap / kw * dy, xx = ox * sx - pw + tap % kw * dx; "
    "    if (yy >= 0 && yy < h && xx >= 0 && xx < w) plane[(long long)yy * w + xx] += grad[out]; "
    "  } "
    "}",
    _maxUnpoolNumpy,
    grain="h * w + outH * outW",
)


# The same sums, one element per input pixel (size: N C h w), for the GPU, where one thread per plane would walk
# it serially: a pixel gathers, tap by tap in (ky, kx) order as the NumPy reference adds them, the gradients of
# the outputs whose winning tap read it. No atomics: every pixel is written by its own element.
maxUnpoolGatherKer = Elementwise(
    "minidl_max_unpool_gather",
    "raw T grad, raw int32 argmax, " + GEOMETRY,
    "T gradX",
    "const long long plane = i / ((long long)h * w); const int pixel = (int)(i - plane * h * w); "
    "const int y = pixel / w, x = pixel % w; T sum = (T)0; "
    "for (int ky = 0; ky < kh; ++ky) { "
    "  const int yy = y + ph - ky * dy; "
    "  if (yy < 0 || yy % sy != 0 || yy / sy >= outH) continue; "
    "  for (int kx = 0; kx < kw; ++kx) { "
    "    const int xx = x + pw - kx * dx; "
    "    if (xx < 0 || xx % sx != 0 || xx / sx >= outW) continue; "
    "    const long long out = (plane * outH + yy / sy) * outW + xx / sx; "
    "    if (argmax[out] == ky * kw + kx) sum += grad[out]; "
    "  } "
    "} "
    "gradX = sum",
    _maxUnpoolNumpy,
)


def maxUnpool(grad, argmax, scalars):
    """(N, C, h, w) whose pixels sum the grad (N, C, outH, outW) of the windows whose winning tap (``argmax``)
    read them; ``scalars``: ``Window.scalars`` of the (N, C, h, w) input. A plane per element on the CPU, a pixel
    per element on the GPU."""
    batch, maps, height, width = scalars[:4]
    gradX = xp.empty((batch, maps, height, width), dtype=grad.dtype)
    grad = xp.ascontiguousarray(grad)
    if isGpu:
        return maxUnpoolGatherKer(grad, argmax, *scalars, gradX)
    return maxUnpoolKer(grad, argmax, *scalars, gradX, size=batch * maps)


class MaxPool2D(Pool2D):
    """``MaxPool2D(size=2, stride=2, pad=0, ceilMode=False)`` on (N, C, H, W) data."""

    cacheAttrs = ("inData", "data", "argmax")
    padValue = -numpy.inf
    argmax = None  # (N, C, outH, outW): the winning tap ky kw + kx of each window, read by backward

    def updData(self, data):
        data = xp.ascontiguousarray(data)
        scalars = self.window.scalars(*data.shape)
        batch, maps, h, w, kh, kw, sy, sx, _, _, dy, dx, outH, outW = scalars
        out = xp.empty((batch, maps, outH, outW), dtype=data.dtype)
        self.argmax = xp.empty(out.shape, dtype=numpy.int32)
        planes, points = batch * maps, outH * outW
        group = min(planes, -(-GATHER_OUTPUTS // points))
        if isGpu or outW >= VECTOR or not readsNoPadding(scalars) or group * h * w >= 2 ** 31:  # (starts: int32)
            rows = valuesPerElement(outH)
            kernel = maxPoolKer if isGpu or outW >= VECTOR else maxPoolWindowsKer
            kernel(data, *scalars, self.padValue, rows, out, self.argmax, size=planes * -(-outH // rows))
            return out
        # each plane an image of one map, read without padding: the first tap of im2col's table starts each window
        starts = gatherSources((planes, 1, h, w, kh, kw, sy, sx, 0, 0, dy, dx, outH, outW), group)[:group * points]
        maxPoolGatherKer(data, starts, planes, group, h, w, kh, kw, dy, dx, points, out, self.argmax,
                         size=-(-planes // group))
        return out

    def updGrad(self, grad):
        scalars = self.window.scalars(*self.inData.shape[:2], *self.planeShape(self.inData.shape))
        return maxUnpool(grad, self.argmax, scalars)
