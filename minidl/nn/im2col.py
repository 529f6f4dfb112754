"""im2col and col2im: the window gathering that turns convolution and pooling into matrix products.

For an image batch of shape (N, C, H, W), a window of (kh, kw) taps with stride (sy, sx), zero padding
(ph, pw) and dilation (dy, dx), the output has outH = (H + 2 ph - dy (kh - 1) - 1) // sy + 1 rows (outW
likewise) and

    col[n, c, ky, kx, oy, ox] = img[n, c, oy sy - ph + ky dy, ox sx - pw + kx dx]   (padValue outside),

so a convolution is a matrix product per image, W (O, C kh kw) @ col[n] (C kh kw, outH outW), whose result
is already image n's NCHW output: no transposes before or after (a batched product over the images).
col2im is the adjoint: every image pixel receives the sum of the col entries that were read from it (the
input gradient of im2col). Both are Elementwise kernels over blocks of rows (a whole plane per element on the
CPU, a row on the GPU), each reading and writing raw arrays.
"""

import numpy

from minidl.backend import Elementwise, isGpu, scratch, valuesPerElement, xp
from minidl.errors import ModuleError
from minidl.validation import checkInteger

REMEMBERED = 64  # input shapes (with what is asked of them) a Window remembers


def pair(value, what):
    """(value, value) for an int, or a pair of ints; ModuleError otherwise."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ModuleError(f"{what} must be an int or a pair of ints, got {value!r}")
    return tuple(checkInteger(item, f"{what} (an int or a pair of ints)") for item in items)


class Window:
    """The geometry of a sliding window: taps (kh, kw), stride, pad, dilation, each a (rows, cols) pair.
    ``ceilMode`` (pooling) counts a last window that starts inside the input or its leading pad but runs past
    the trailing pad, as PyTorch's ceil_mode: outH = ceil((H + 2 ph - span) / sy) + 1, less one if that
    window would start in the trailing pad; what it reads past the pad is padValue."""

    def __init__(self, size, stride=1, pad=0, dilation=1, ceilMode=False):
        self.size, self.stride = pair(size, "size"), pair(stride, "stride")
        self.pad, self.dilation = pair(pad, "pad"), pair(dilation, "dilation")
        self.ceilMode = bool(ceilMode)
        if min(self.size + self.stride + self.dilation) < 1 or min(self.pad) < 0:
            raise ModuleError(
                f"window size, stride and dilation must be >= 1 and pad >= 0, got size={self.size}, "
                f"stride={self.stride}, pad={self.pad}, dilation={self.dilation}"
            )
        self.known = {}  # what is worked out once (``remembered``): outShape's answers, im2col's and col2im's
        # arguments per input shape, the backward passes' windows

    def __repr__(self):
        return f"size={self.size}, stride={self.stride}, pad={self.pad}, dilation={self.dilation}"

    def remembered(self, key, work):
        """``work()``, done once per ``key`` (what is asked, with the input shape it depends on) and remembered: a
        module calls with the same shapes step after step (a LeNet forward asked outShape ten times; the backward
        passes made their "full" window anew). At most REMEMBERED keys: inputs of ever new shapes start the memory
        afresh."""
        if key not in self.known:
            if len(self.known) >= REMEMBERED:
                self.known.clear()
            self.known[key] = work()
        return self.known[key]

    def outShape(self, height, width, what):
        """(outH, outW) for an input of (height, width); ModuleError if the window does not fit once (``what``,
        formatted into the message, names the caller)."""
        return self.remembered((height, width), lambda: self._countOut(height, width, what))

    def _countOut(self, height, width, what):
        out = []
        for length, size, stride, pad, dilation in zip(
            (height, width), self.size, self.stride, self.pad, self.dilation
        ):
            span = dilation * (size - 1) + 1
            if span > length + 2 * pad:
                raise ModuleError(
                    f"{what}: the window {self.size} (dilated to span {span}) is larger than the padded input "
                    f"{(height + 2 * self.pad[0], width + 2 * self.pad[1])} (input {(height, width)}, pad {self.pad})"
                )
            room = length + 2 * pad - span
            count = (-(-room // stride) if self.ceilMode else room // stride) + 1
            if self.ceilMode and (count - 1) * stride >= length + pad:
                count -= 1
            out.append(count)
        return tuple(out)

    def scalars(self, batch, maps, height, width):
        """The kernels' int arguments: batch, maps, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW."""
        return (batch, maps, height, width, *self.size, *self.stride, *self.pad, *self.dilation,
                *self.outShape(height, width, "im2col"))


def _slices(ky, kx, sy, sx, dy, dx, outH, outW):
    """The padded image's rows and columns that tap (ky, kx) reads for every output position."""
    return (slice(ky * dy, ky * dy + sy * (outH - 1) + 1, sy), slice(kx * dx, kx * dx + sx * (outW - 1) + 1, sx))


def _paddedShape(h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW):
    """The rows and columns the windows read: the input and its pads, and (ceil mode) what the last window
    reads past the trailing pad."""
    return (max(h + 2 * ph, (outH - 1) * sy + dy * (kh - 1) + 1), max(w + 2 * pw, (outW - 1) * sx + dx * (kw - 1) + 1))


def _padded(img, geometry, padValue):
    """img inside padValue: ph rows and pw columns before, the rest of _paddedShape after (img itself when
    nothing is added)."""
    batch, maps, h, w = img.shape
    ph, pw = geometry[6:8]
    rows, cols = _paddedShape(h, w, *geometry[2:])
    if (rows, cols) == (h, w):
        return img
    padded = scratch((batch, maps, rows, cols), img.dtype, "padded")
    padded.fill(padValue)
    padded[:, :, ph:ph + h, pw:pw + w] = img
    return padded


# The output columns ox of one output row that tap kx reads inside the image, [lo, hi), for the input column
# ox sx + off; found once per tap (at stride 1 without a division: it cost half the forward of depthwise).
ROW_RANGE = (
    "const int off = kx * dx - pw; "
    "const int hi = min(outW, off >= w ? 0 : sx == 1 ? w - off : (w - 1 - off) / sx + 1); "
    "const int lo = min(hi, off >= 0 ? 0 : sx == 1 ? -off : (-off + sx - 1) / sx); "
)


# Stride 1 with as many output as input columns ("same"): a tap's reads, seen flat over a plane, are the plane
# shifted by (ky dy - ph) w + kx dx - pw; the rows it reads inside the image are [rlo, rhi), the columns [lo, hi)
# (a flat read whose column is outside wraps to the neighbouring row: padding), and [first, last) the positions
# whose flat read stays inside the plane.
SAME_RANGE = (
    "const int rlo = min(outH, max(0, ph - ky * dy)), rhi = max(rlo, min(outH, h + ph - ky * dy)); "
    "const int lo = max(0, pw - kx * dx), hi = min(w, w + pw - kx * dx); "  # the columns read inside the image
    "const long long shift = (long long)(ky * dy - ph) * w + (kx * dx - pw); "
    "const long long first = min((long long)outH * w, max((long long)rlo * w, -shift)); "  # beyond [first, last)
    "const long long last = max(first, min((long long)rhi * w, (long long)h * w - shift)); "  # the read leaves the
    # plane: padding (first at most the plane: a pad of more rows than the output has would put it past the end)
)


def isSame(window):
    """Stride 1 with as many output as input columns (2 pw = dx (kw - 1)): the flat-plane kernels apply."""
    return window.stride == (1, 1) and 2 * window.pad[1] == window.dilation[1] * (window.size[1] - 1)


_columns = {}  # (rows, width) -> its columns array, made once (two launches) and only read afterwards


def columns(rows, width):
    """The column of each position of a (rows, width) plane, p mod width, as the flat kernels' int32 array: made
    at the first call for a plane's shape and kept, so a step makes none."""
    key = (rows, width)
    if key not in _columns:
        _columns[key] = xp.tile(xp.arange(width, dtype=numpy.int32), rows)
    return _columns[key]


def layoutView(col, batch, maps, kh, kw, outH, outW, imageStride, tapStride):
    """col (either layout) seen as (N, C, kh, kw, outH, outW): per image (imageStride C kh kw outH outW, tapStride
    outH outW) or with the batch inside the columns (imageStride outH outW, tapStride N outH outW)."""
    points = outH * outW
    if (imageStride, tapStride) == (maps * kh * kw * points, points):
        return col.reshape(batch, maps, kh, kw, outH, outW)
    if (imageStride, tapStride) == (points, batch * points):
        return col.reshape(maps, kh, kw, batch, outH, outW).transpose(3, 0, 1, 2, 4, 5)
    raise ValueError(f"the NumPy references know two col layouts, not image stride {imageStride}, tap stride "
                     f"{tapStride}")


def im2colNumpy(img, batch, maps, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW, padValue, _taps, _rows, _span,
                imageStride, tapStride, col):
    padded = _padded(img, (h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW), padValue)
    view = layoutView(col, batch, maps, kh, kw, outH, outW, imageStride, tapStride)
    for ky in range(kh):
        for kx in range(kw):
            view[:, :, ky, kx] = padded[(..., *_slices(ky, kx, sy, sx, dy, dx, outH, outW))]


# One element per block of ``taps`` taps, ``rows`` output rows and ``span`` output columns of one (n, c) image (size:
# N C tap blocks row blocks column blocks): on the CPU every tap, row and column of the image, on the GPU one
# value (a strided 1x1 convolution's col holds a quarter of the image or less: a row per thread would give each
# thread 16 or more of its values to walk). Tap t's plane of image n,
# map c starts at n imageStride + (c kh kw + t) tapStride (``layoutView``: per image, or the batch inside the
# columns for one product over the batch). An element of whole rows (the CPU's) copies the input row each reads,
# contiguously at stride 1, padding before and after; an element of part of a row (the GPU's value) reads value by
# value. Measured (32x16x32x32, 3x3, pad 1, 2 cores, one run): 1.6 ms against 3.0 ms for the NumPy slices; one
# element per col value, decoding six indices each, took 124 ms. The whole rows keep a loop of their own: with the
# column range's bounds in it g++ compiled LeNet's second convolution's im2col 30% slower (0.42 against 0.32 ms,
# one thread).
im2colKer = Elementwise(
    "minidl_im2col",
    "raw T img, int32 batch, int32 maps, int32 h, int32 w, int32 kh, int32 kw, int32 sy, int32 sx, int32 ph, "
    "int32 pw, int32 dy, int32 dx, int32 outH, int32 outW, T padValue, int32 taps, int32 rows, int32 span, "
    "int64 imageStride, int64 tapStride",
    "raw T col",
    "const int tapBlocks = (kh * kw + taps - 1) / taps, rowBlocks = (outH + rows - 1) / rows; "
    "const int colBlocks = (outW + span - 1) / span; "
    "const long long image = i / ((long long)tapBlocks * rowBlocks * colBlocks); "  # n maps + c: the plane
    "const int block = (int)(i - image * tapBlocks * rowBlocks * colBlocks); "
    "const int firstTap = block / (rowBlocks * colBlocks) * taps, first = block / colBlocks % rowBlocks * rows; "
    "const int c0 = block % colBlocks * span, c1 = min(outW, c0 + span); "  # the columns of this element
    "const T* src = &img[image * h * w]; "
    "const long long planes = image / maps * imageStride + image % maps * kh * kw * tapStride; "
    "for (int t = firstTap; t < min(kh * kw, firstTap + taps); ++t) { "
    "  const int ky = t / kw, kx = t % kw; "
    "  T* __restrict__ out = &col[planes + t * tapStride + (long long)first * outW]; "
    + ROW_RANGE +
    "  for (int oy = first; oy < min(outH, first + rows); ++oy, out += outW) { "
    "    const int y = oy * sy - ph + ky * dy; "
    "    if (c0 != 0 || c1 != outW) { "  # part of a row: value by value
    "      for (int ox = c0; ox < c1; ++ox) { "
    "        const int x = ox * sx + off; T value = padValue; "
    "        if (y >= 0 && y < h && x >= 0 && x < w) value = src[(long long)y * w + x]; "
    "        out[ox] = value; "
    "      } "
    "      continue; "
    "    } "
    "    if (y < 0 || y >= h) { for (int ox = 0; ox < outW; ++ox) out[ox] = padValue; continue; } "
    "    const T* __restrict__ row = src + (long long)y * w + off; "
    "    for (int ox = 0; ox < lo; ++ox) out[ox] = padValue; "
    "    if (sx == 1) { for (int ox = lo; ox < hi; ++ox) out[ox] = row[ox]; } "
    "    else { for (int ox = lo; ox < hi; ++ox) out[ox] = row[ox * sx]; } "
    "    for (int ox = hi; ox < outW; ++ox) out[ox] = padValue; "
    "  } "
    "}",
    im2colNumpy,
    grain="taps * rows * span",
)


def _im2colSameNumpy(img, column, batch, maps, h, w, kh, kw, ph, pw, dy, dx, outH, padValue, imageStride, tapStride,
                     col):
    im2colNumpy(img, batch, maps, h, w, kh, kw, 1, 1, ph, pw, dy, dx, outH, w, padValue, 1, 1, 1, imageStride,
                tapStride, col)


# im2col at stride 1 with "same" columns, one element per (n, c) image: per tap one flat loop over its plane of
# col, a select where the read wraps (SAME_RANGE), instead of a loop per row. Measured (32x64x8x8, 3x3, pad 1,
# 2 cores): 0.4 ms against 0.8 ms by rows. The CPU's only: the GPU takes im2colKer, a row of a tap per thread.
im2colSameKer = Elementwise(
    "minidl_im2col_same",
    "raw T img, raw int32 column, int32 batch, int32 maps, int32 h, int32 w, int32 kh, int32 kw, int32 ph, "
    "int32 pw, int32 dy, int32 dx, int32 outH, T padValue, int64 imageStride, int64 tapStride",
    "raw T col",
    "const T* __restrict__ src = &img[i * h * w]; const int* __restrict__ cols = &column[0]; "
    "const long long plane = (long long)outH * w, planes = i / maps * imageStride + i % maps * kh * kw * tapStride; "
    "for (int ky = 0; ky < kh; ++ky) { "
    "  for (int kx = 0; kx < kw; ++kx) { "
    "    T* __restrict__ out = &col[planes + (ky * kw + kx) * tapStride]; "
    + SAME_RANGE +
    "    for (long long p = 0; p < first; ++p) out[p] = padValue; "
    "    for (long long p = first; p < last; ++p) { "
    "      const int c = cols[p]; const T value = src[p + shift]; out[p] = (c >= lo && c < hi) ? value : padValue; "
    "    } "
    "    for (long long p = last; p < plane; ++p) out[p] = padValue; "
    "  } "
    "}",
    _im2colSameNumpy,
    grain="kh * kw * outH * w",
)


def col2imNumpy(col, batch, maps, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW, _rowsPerElement, _span,
                imageStride, tapStride, img):
    rows, cols = _paddedShape(h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW)
    padded = scratch((batch, maps, rows, cols), img.dtype, "padded") if (rows, cols) != (h, w) else img
    padded.fill(0)
    view = layoutView(col, batch, maps, kh, kw, outH, outW, imageStride, tapStride)
    for ky in range(kh):
        for kx in range(kw):
            padded[(..., *_slices(ky, kx, sy, sx, dy, dx, outH, outW))] += view[:, :, ky, kx]
    if padded is not img:
        img[...] = padded[:, :, ph:ph + h, pw:pw + w]


# One element per block of ``rows`` rows and ``span`` columns of one (n, c) image plane (size: N C row blocks
# column blocks; the whole plane on the CPU, one pixel on the GPU, where a row per thread walked up to 288 col
# values of a 3x3 window): each pixel sums, tap by
# tap in (ky, kx) order as the NumPy reference adds them, the col entries read from it; col in either layout (as
# im2col writes it). An element of whole rows (the CPU's) adds tap by tap into its rows, a tap's entries of one row
# contiguous at stride 1; an element of part of a row (the GPU's pixel) sums its pixels one by one, in the same
# order. No atomics: every pixel is written by one element.
col2imKer = Elementwise(
    "minidl_col2im",
    "raw T col, int32 batch, int32 maps, int32 h, int32 w, int32 kh, int32 kw, int32 sy, int32 sx, int32 ph, "
    "int32 pw, int32 dy, int32 dx, int32 outH, int32 outW, int32 rows, int32 span, int64 imageStride, "
    "int64 tapStride",
    "raw T img",
    "const int blocks = (h + rows - 1) / rows, colBlocks = (w + span - 1) / span; "
    "const int first = (int)(i / colBlocks % blocks) * rows, x0 = (int)(i % colBlocks) * span; "
    "const int x1 = min(w, x0 + span); "  # the columns of this element
    "const long long image = i / colBlocks / blocks; T* __restrict__ out = &img[(image * h + first) * w]; "
    "const long long planes = image / maps * imageStride + image % maps * kh * kw * tapStride; "
    "for (int y = first; y < min(h, first + rows); ++y, out += w) { "
    "  if (x0 != 0 || x1 != w) { "  # part of a row: pixel by pixel
    "    for (int x = x0; x < x1; ++x) { "
    "      T sum = (T)0; "
    "      for (int ky = 0; ky < kh; ++ky) { "
    "        const int yy = y + ph - ky * dy; "
    "        if (yy < 0 || yy % sy != 0 || yy / sy >= outH) continue; "
    "        for (int kx = 0; kx < kw; ++kx) { "
    "          const int xx = x + pw - kx * dx; "
    "          if (xx < 0 || xx % sx != 0 || xx / sx >= outW) continue; "
    "          sum += col[planes + (ky * kw + kx) * tapStride + (long long)(yy / sy) * outW + xx / sx]; "
    "        } "
    "      } "
    "      out[x] = sum; "
    "    } "
    "    continue; "
    "  } "
    "  for (int x = 0; x < w; ++x) out[x] = (T)0; "
    "  for (int ky = 0; ky < kh; ++ky) { "
    "    const int yy = y + ph - ky * dy; "
    "    if (yy < 0 || yy % sy != 0 || yy / sy >= outH) continue; "
    "    for (int kx = 0; kx < kw; ++kx) { "
    "      const T* __restrict__ src = &col[planes + (ky * kw + kx) * tapStride + (long long)(yy / sy) * outW]; "
    "      const int off = pw - kx * dx; "  # pixel x reads col column (x + off) / sx where that divides
    "      int x = max(0, -off); "
    "      if (sx == 1) { for (; x < min(w, outW - off); ++x) out[x] += src[x + off]; continue; } "
    "      x += (sx - (x + off) % sx) % sx; "
    "      for (int ox = (x + off) / sx; x < w && ox < outW; x += sx, ++ox) out[x] += src[ox]; "
    "    } "
    "  } "
    "}",
    col2imNumpy,
    grain="rows * span * kh * kw",
)


def _im2colGatherNumpy(img, sources, batch, maps, h, w, taps, group, points, padValue, col):
    table = sources.reshape(taps, group, points)[:, 0]  # the first image's reads: each image's from its own plane
    inside = table >= 0
    values = img.reshape(batch, maps, h * w)[:, :, numpy.where(inside, table, 0)]  # (N, C, taps, points)
    col.reshape(maps, taps, batch, points)[...] = numpy.where(inside, values, padValue).transpose(1, 2, 0, 3)


# im2col into the wide layout (the batch inside the columns) for maps of at most VECTOR outputs, one element
# per map and group of images: per tap one loop over the group's outputs, contiguous in col, each read at the offset
# ``sources`` gives (from the group's first plane; -1 where the tap reads padding), so it vectorizes as a gather
# however small the maps. The CPU's only. 3x3 "same" on 256x8x4x4, in a C harness: 0.17 ms plane by plane
# (im2colSameKer: nine loops of 16 per plane), 0.12 ms so; from maps of 5x5 the plane-by-plane loops were faster.
im2colGatherKer = Elementwise(
    "minidl_im2col_gather",
    "raw T img, raw int32 sources, int32 batch, int32 maps, int32 h, int32 w, int32 taps, int32 group, int32 points, "
    "T padValue",
    "raw T col",
    "const int blocks = (batch + group - 1) / group; const int feature = (int)(i / blocks); "
    "const int first = (int)(i % blocks) * group; const int count = min(group, batch - first) * points; "
    "const T* __restrict__ src = &img[((long long)first * maps + feature) * h * w]; "
    "for (int tap = 0; tap < taps; ++tap) { "
    "  T* __restrict__ out = &col[((long long)feature * taps + tap) * batch * points + (long long)first * points]; "
    "  const int* __restrict__ from = &sources[(long long)tap * group * points]; "
    "\n#pragma omp simd\n"
    "  for (int o = 0; o < count; ++o) { const int at = from[o]; out[o] = at >= 0 ? src[at] : padValue; } "
    "}",
    _im2colGatherNumpy,
    grain="taps * group * points",
)
VECTOR = 16  # floats in one of the host's vectors (AVX-512): a loop over fewer is mostly its own overhead
GATHER_OUTPUTS = 256  # values a group of planes (or images) of a gathering kernel holds at least, per tap

_sources = {}  # (window's scalars but the batch, group) -> its sources array, made once and only read afterwards


def gatherSources(scalars, group):
    """im2colGatherKer's ``sources`` for ``Window.scalars`` of the input: per tap, per image of a group and output
    position, the offset from the group's first plane that the tap reads, or -1 where it reads padding."""
    _, maps, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW = scalars
    key = (*scalars[1:], group)
    if key not in _sources:
        ky, kx, oy, ox = numpy.ix_(range(kh), range(kw), range(outH), range(outW))
        y, x = oy * sy - ph + ky * dy, ox * sx - pw + kx * dx
        plane = numpy.where((y >= 0) & (y < h) & (x >= 0) & (x < w), y * w + x, -1).reshape(kh * kw, 1, -1)
        images = numpy.arange(group).reshape(1, -1, 1) * (maps * h * w)
        _sources[key] = xp.asarray(numpy.where(plane >= 0, plane + images, -1).astype(numpy.int32).reshape(-1))
    return _sources[key]


def strides(batch, maps, kh, kw, points, wide):
    """(imageStride, tapStride) of col: per image, or with the batch inside the columns (``wide``)."""
    return (points, batch * points) if wide else (maps * kh * kw * points, points)


def im2colCall(window, shape, wide):
    """(kernel, its arguments before padValue but img, those after it but col, col's shape, the loop's size) of
    im2col for an input of ``shape``."""
    batch, maps = shape[:2]
    scalars = window.scalars(*shape)
    (kh, kw), outH, outW = window.size, scalars[-2], scalars[-1]
    colShape = (maps, kh, kw, batch, outH, outW) if wide else (batch, maps, kh, kw, outH, outW)
    layout = strides(batch, maps, kh, kw, outH * outW, wide)
    points = outH * outW
    if wide and points <= VECTOR and not isGpu:
        group = min(batch, -(-GATHER_OUTPUTS // points))
        if group * maps * scalars[2] * scalars[3] < 2 ** 31:  # the offsets fit int32
            return (im2colGatherKer, (gatherSources(scalars, group), batch, maps, *scalars[2:4], kh * kw, group,
                                      points), (), colShape, maps * -(-batch // group))
    if isSame(window) and not isGpu:  # one element per image: on the GPU a thread would walk a whole plane
        _, _, h, w, _, _, _, _, ph, pw, dy, dx, _, _ = scalars
        return (im2colSameKer, (columns(outH, w), batch, maps, h, w, kh, kw, ph, pw, dy, dx, outH), layout, colShape,
                batch * maps)
    taps, rows, span = (1, 1, 1) if isGpu else (kh * kw, outH, outW)
    size = batch * maps * -(-kh * kw // taps) * -(-outH // rows) * -(-outW // span)
    return im2colKer, scalars, (taps, rows, span, *layout), colShape, size


def im2col(img, window, padValue=0, wide=False, temporary=False):
    """col gathered from img (N, C, H, W): (N, C, kh, kw, outH, outW), or with ``wide`` the batch inside the
    columns, (C, kh, kw, N, outH, outW): for C kh kw by N outH outW products over the whole batch. A
    ``temporary`` col, used before the next temporary one is asked for, lives on the CPU in a buffer kept
    between calls: a fresh col of more than 32 MB is mapped anew each time, and its page faults took 8% of a
    64-map 56x56 convolution's step. The kernel's arguments are worked out once per input shape (``Window.known``)."""
    kernel, head, tail, shape, size = window.remembered(("im2col", img.shape, wide),
                                                        lambda: im2colCall(window, img.shape, wide))
    col = scratch(shape, img.dtype, "im2col") if temporary and not isGpu else xp.empty(shape, dtype=img.dtype)
    return kernel(xp.ascontiguousarray(img), *head, padValue, *tail, col, size=size)


def _col2imCall(window, colShape, height, width, batch, wide):
    """(col2im's arguments but col and img, img's shape, the loop's size) for a col of ``colShape``."""
    maps = colShape[0] if wide else colShape[1]
    batch = batch if wide else colShape[0]
    rows, span = valuesPerElement(height), valuesPerElement(width)
    layout = strides(batch, maps, *window.size, colShape[-2] * colShape[-1], wide)
    return ((*window.scalars(batch, maps, height, width), rows, span, *layout), (batch, maps, height, width),
            batch * maps * -(-height // rows) * -(-width // span))


def col2im(col, window, height, width, batch=None, wide=False):
    """The image (N, C, height, width) whose pixels sum the col entries read from them: col (N, C, kh, kw, outH,
    outW), or with ``wide`` (C, kh, kw, N, outH, outW) (im2col's layouts; then ``batch`` is N). The kernel's
    arguments are worked out once per shape (``Window.known``)."""
    col = xp.ascontiguousarray(col)
    args, shape, size = window.remembered(("col2im", col.shape, height, width, batch, wide),
                                          lambda: _col2imCall(window, col.shape, height, width, batch, wide))
    return col2imKer(col, *args, xp.empty(shape, dtype=col.dtype), size=size)
