"""The window kernels of convolution and pooling (im2col, col2im, max pooling and unpooling, average unpooling)
and the row-and-column gather behind padding and upsampling (gather2d, scatter2d): CPU path against float64
oracles written with explicit loops, other paths against the CPU path."""

import numpy
import pytest
from hypothesis import assume
from hypothesis import strategies as st

from minidl.nn.avgpool2d import avgUnpoolKer
from minidl.nn.gather2d import gatherKer, scatterKer
from minidl.nn.im2col import col2imKer, im2colGatherKer, im2colKer, im2colSameKer
from minidl.nn.maxpool2d import maxPoolGatherKer, maxPoolKer, maxPoolWindowsKer, maxUnpoolKer
from minidl.testing import arrays, checkKernel, floatDtypes
from tests.nn.windows import windows


@st.composite
def geometries(draw):
    """(batch, maps, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW) with the window fitting at least once, in
    ceil mode half the time."""
    window = draw(windows(ceilMode=True))
    return draw(st.integers(1, 2)), draw(st.integers(1, 3)), *window


def taps(geometry):
    """Every (output position, tap, source pixel or None where it falls in the padding)."""
    _, _, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW = geometry
    for oy, ox, ky, kx in numpy.ndindex(outH, outW, kh, kw):
        y, x = oy * sy - ph + ky * dy, ox * sx - pw + kx * dx
        yield (oy, ox, ky, kx), ((y, x) if 0 <= y < h and 0 <= x < w else None)


def layouts(draw, batch, maps, kh, kw, outH, outW):
    """(imageStride, tapStride, col shape) of a drawn col layout: per image, or the batch inside the columns."""
    if draw(st.booleans()):
        return outH * outW, batch * outH * outW, (maps, kh, kw, batch, outH, outW)
    return maps * kh * kw * outH * outW, outH * outW, (batch, maps, kh, kw, outH, outW)


def perImage(col, batch, maps, kh, kw, outH, outW, tapStride):
    """col[n, c, ky, kx, oy, ox], a view of either layout."""
    wide = tapStride != outH * outW or (batch == 1 and col.shape[0] != batch)
    return col.reshape(maps, kh, kw, batch, outH, outW).transpose(3, 0, 1, 2, 4, 5) if wide else \
        col.reshape(batch, maps, kh, kw, outH, outW)


def im2colOracle(img, *geometryAndOut):
    """col[n, c, ky, kx, oy, ox] = img[n, c, source pixel], in col's layout."""
    *geometry, padValue, _taps, _rows, _span, _imageStride, tapStride, col = geometryAndOut
    batch, maps, _, _, kh, kw, *_, outH, outW = geometry
    out = numpy.full(col.shape, padValue, dtype=numpy.float64)
    view = perImage(out, batch, maps, kh, kw, outH, outW, tapStride)
    for (oy, ox, ky, kx), source in taps(geometry):
        if source is not None:
            view[:, :, ky, kx, oy, ox] = img[:, :, source[0], source[1]]
    return [out]


def col2imOracle(col, *geometryAndOut):
    *geometry, _rows, _span, _imageStride, tapStride, img = geometryAndOut
    batch, maps, _, _, kh, kw, *_, outH, outW = geometry
    view = perImage(col, batch, maps, kh, kw, outH, outW, tapStride)
    out = numpy.zeros(img.shape)
    for (oy, ox, ky, kx), source in taps(geometry):
        if source is not None:
            out[:, :, source[0], source[1]] += view[:, :, ky, kx, oy, ox]
    return [out]


@st.composite
def im2colCases(draw):
    dtype, geometry = draw(floatDtypes()), draw(geometries())
    batch, maps, h, w, kh, kw, *_, outH, outW = geometry
    padValue = draw(st.sampled_from([0.0, -7.5]))  # finite: the comparison's atol scales with the largest value
    img = draw(arrays(dtype, (batch, maps, h, w)))
    taps, rows = draw(st.integers(1, kh * kw)), draw(st.integers(1, outH))  # per element: 1, 1, 1 on the GPU,
    span = draw(st.integers(1, outW))
    imageStride, tapStride, shape = layouts(draw, batch, maps, kh, kw, outH, outW)  # the image's on the CPU
    return dtype, [img, *geometry, padValue, taps, rows, span, imageStride, tapStride,
                   numpy.full(shape, numpy.nan, dtype)]


@st.composite
def im2colGatherCases(draw):
    """Any window, the batch inside the columns, in groups of images whose last may be short; the offsets each tap
    reads (from the group's first plane, -1 in the padding) worked out by explicit loops."""
    dtype, geometry = draw(floatDtypes()), draw(geometries())
    batch, maps, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW = geometry
    batch = draw(st.integers(1, 5))
    group = draw(st.integers(1, batch))
    sources = numpy.full((kh * kw, group, outH * outW), -1, numpy.int32)
    for (oy, ox, ky, kx), source in taps(geometry):
        if source is not None:
            for image in range(group):
                sources[ky * kw + kx, image, oy * outW + ox] = image * maps * h * w + source[0] * w + source[1]
    img = draw(arrays(dtype, (batch, maps, h, w)))
    padValue = draw(st.sampled_from([0.0, -7.5]))
    return dtype, [img, sources.reshape(-1), batch, maps, h, w, kh * kw, group, outH * outW, padValue,
                   numpy.full((maps, kh, kw, batch, outH, outW), numpy.nan, dtype)]


def im2colGatherOracle(img, sources, batch, maps, h, w, taps, group, points, padValue, col):
    """col[c, tap, n, p] = img[n, c] at the pixel the first image's offset names (padValue at -1), by loops."""
    out = numpy.empty((maps, taps, batch, points))
    offsets = sources.reshape(taps, group, points)[:, 0]
    for c, tap, n, point in numpy.ndindex(maps, taps, batch, points):
        at = int(offsets[tap, point])
        out[c, tap, n, point] = padValue if at < 0 else img[n, c, at // w, at % w]
    return [out.reshape(col.shape)]


@st.composite
def im2colSameCases(draw):
    """Stride 1 with as many output as input columns (2 pw = dx (kw - 1)), any rows."""
    dtype = draw(floatDtypes())
    kh, kw, dy, dx = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    assume(dx * (kw - 1) % 2 == 0)
    ph, pw, h, w = draw(st.integers(0, 2)), dx * (kw - 1) // 2, draw(st.integers(1, 6)), draw(st.integers(1, 9))
    outH = h + 2 * ph - dy * (kh - 1)
    assume(outH >= 1)
    batch, maps = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    img = draw(arrays(dtype, (batch, maps, h, w)))
    padValue = draw(st.sampled_from([0.0, -7.5]))
    column = numpy.tile(numpy.arange(w, dtype=numpy.int32), outH)
    imageStride, tapStride, shape = layouts(draw, batch, maps, kh, kw, outH, w)
    return dtype, [img, column, batch, maps, h, w, kh, kw, ph, pw, dy, dx, outH, padValue, imageStride, tapStride,
                   numpy.full(shape, numpy.nan, dtype)]


def im2colSameOracle(img, column, batch, maps, h, w, kh, kw, ph, pw, dy, dx, outH, padValue, imageStride,
                     tapStride, col):
    return im2colOracle(img, batch, maps, h, w, kh, kw, 1, 1, ph, pw, dy, dx, outH, w, padValue, 1, 1, 1,
                        imageStride, tapStride, col)


@st.composite
def col2imCases(draw):
    dtype, geometry = draw(floatDtypes()), draw(geometries())
    batch, maps, h, w, kh, kw, *_, outH, outW = geometry
    imageStride, tapStride, shape = layouts(draw, batch, maps, kh, kw, outH, outW)
    col = draw(arrays(dtype, shape))
    rows, span = draw(st.integers(1, h)), draw(st.integers(1, w))
    return dtype, [col, *geometry, rows, span, imageStride, tapStride,
                   numpy.full((batch, maps, h, w), numpy.nan, dtype)]


@st.composite
def maxPoolCases(draw):
    """Inputs with NaN, infinities and many equal values (ties: the first tap wins), -inf as the padding."""
    dtype, geometry = draw(floatDtypes()), draw(geometries())
    batch, maps, h, w, kh, kw, *_, outH, outW = geometry
    img = draw(arrays(dtype, (batch, maps, h, w), -2.0, 2.0)).round()  # few distinct values: many ties
    rows = draw(st.integers(1, outH))
    out = numpy.full((batch, maps, outH, outW), numpy.nan, dtype)
    return dtype, [img, *geometry, -numpy.inf, rows, out, numpy.full(out.shape, -7, numpy.int32)]


def maxPoolOracle(img, *geometryAndOut):
    """y = the window's maximum (NaN when it holds one), argmax = its first maximal (or first NaN) tap."""
    *geometry, padValue, _rows, y, argmax = geometryAndOut
    _, _, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW = geometry
    best, at = numpy.full(y.shape, numpy.nan), numpy.full(y.shape, -1)
    for n, c, oy, ox in numpy.ndindex(y.shape):
        for ky, kx in numpy.ndindex(kh, kw):
            yy, xx = oy * sy - ph + ky * dy, ox * sx - pw + kx * dx
            value = img[n, c, yy, xx] if 0 <= yy < h and 0 <= xx < w else padValue
            current = best[n, c, oy, ox]
            if at[n, c, oy, ox] < 0 or value > current or (numpy.isnan(value) and not numpy.isnan(current)):
                best[n, c, oy, ox], at[n, c, oy, ox] = value, ky * kw + kx
    return [best, at]


@st.composite
def maxPoolGatherCases(draw):
    """Windows that read no padding (the input a window's span, or up to a stride more, past the last window's
    start), in groups of planes whose last may be short; NaN, infinities and ties as for the other poolings."""
    dtype = draw(floatDtypes())
    kh, kw, sy, sx, dy, dx, outH, outW = (draw(st.integers(1, 3)) for _ in range(8))
    h = (outH - 1) * sy + (kh - 1) * dy + 1 + draw(st.integers(0, sy - 1))
    w = (outW - 1) * sx + (kw - 1) * dx + 1 + draw(st.integers(0, sx - 1))
    batch, maps = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    group = draw(st.integers(1, batch * maps))
    starts = numpy.array([plane * h * w + oy * sy * w + ox * sx
                          for plane in range(group) for oy in range(outH) for ox in range(outW)], numpy.int32)
    img = draw(arrays(dtype, (batch, maps, h, w), -2.0, 2.0)).round()  # few distinct values: many ties
    out = numpy.full((batch, maps, outH, outW), numpy.nan, dtype)
    return dtype, [img, starts, batch * maps, group, h, w, kh, kw, dy, dx, outH * outW, out,
                   numpy.full(out.shape, -7, numpy.int32)]


def maxPoolGatherOracle(img, starts, planes, group, h, w, kh, kw, dy, dx, points, y, argmax):
    """maxPoolOracle's maximum and first winning tap, each output's window at the pixel its start names."""
    best, at = numpy.full((planes, points), numpy.nan), numpy.full((planes, points), -1)
    pixels = img.reshape(planes, h, w)
    for plane, point in numpy.ndindex(planes, points):
        top, left = divmod(int(starts[point]), w)
        for ky, kx in numpy.ndindex(kh, kw):
            value, current = pixels[plane, top + ky * dy, left + kx * dx], best[plane, point]
            if at[plane, point] < 0 or value > current or (numpy.isnan(value) and not numpy.isnan(current)):
                best[plane, point], at[plane, point] = value, ky * kw + kx
    return [best.reshape(y.shape), at.reshape(argmax.shape)]


def winningTaps(draw, geometry):
    """A drawn argmax for the geometry: per (n, c, oy, ox) the index ky kw + kx of its window's winning tap."""
    batch, maps, _, _, kh, kw, *_, outH, outW = geometry
    size = batch * maps * outH * outW
    taps = draw(st.lists(st.integers(0, kh * kw - 1), min_size=size, max_size=size))
    return numpy.array(taps, numpy.int32).reshape(batch, maps, outH, outW)


def winners(argmax, geometry):
    """((n, c, oy, ox), (n, c, y, x)) per output position whose winning tap read pixel (y, x) of the input (none
    where that tap was padding)."""
    _, _, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW = geometry
    for n, c, oy, ox in numpy.ndindex(argmax.shape):
        ky, kx = divmod(int(argmax[n, c, oy, ox]), kw)
        yy, xx = oy * sy - ph + ky * dy, ox * sx - pw + kx * dx
        if 0 <= yy < h and 0 <= xx < w:
            yield (n, c, oy, ox), (n, c, yy, xx)


@st.composite
def maxUnpoolCases(draw):
    dtype, geometry = draw(floatDtypes()), draw(geometries())
    batch, maps, h, w, *_, outH, outW = geometry
    grad = draw(arrays(dtype, (batch, maps, outH, outW)))
    return dtype, [grad, winningTaps(draw, geometry), *geometry, numpy.full((batch, maps, h, w), numpy.nan, dtype)]


def maxUnpoolOracle(grad, argmax, *geometryAndOut):
    """Each output's gradient added to the pixel its winning tap read (nothing where that tap was padding)."""
    *geometry, gradX = geometryAndOut
    out = numpy.zeros(gradX.shape)
    for position, pixel in winners(argmax, geometry):
        out[pixel] += grad[position]
    return [out]


@st.composite
def avgUnpoolCases(draw):
    dtype = draw(floatDtypes())
    maps, window, points = (draw(st.integers(1, 5)) for _ in range(3))
    grad = draw(arrays(dtype, (maps, points)))
    return dtype, [grad, window, points, 1.0 / window, numpy.full((maps, window, points), numpy.nan, dtype)]


def avgUnpoolOracle(grad, window, points, scale, gradCol):
    return [numpy.repeat(grad[:, None, :], window, axis=1) * scale]


def test_im2col_pads_with_minus_infinity_exactly_where_the_window_leaves_the_image():
    img = numpy.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    geometry = (1, 1, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 2, 2)
    col = numpy.empty((1, 1, 2, 2, 2, 2))
    im2colKer(img, *geometry, -numpy.inf, 4, 2, 2, 16, 4, col, size=1)
    expected = im2colOracle(img, *geometry, -numpy.inf, 4, 2, 2, 16, 4, col)[0]
    numpy.testing.assert_array_equal(col, expected)
    assert numpy.isinf(col).sum() == 7  # the four windows at stride 2 with pad 1 read 9 pixels of 16 taps


@st.composite
def gatherIndices(draw):
    """(planes, h, w, rows, cols): source rows and columns, in any order and repeated."""
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    rows = numpy.array(draw(st.lists(st.integers(0, h - 1), min_size=1, max_size=7)), numpy.int32)
    cols = numpy.array(draw(st.lists(st.integers(0, w - 1), min_size=1, max_size=7)), numpy.int32)
    return draw(st.integers(1, 4)), h, w, rows, cols


@st.composite
def gatherCases(draw):
    dtype, (planes, h, w, rows, cols) = draw(floatDtypes()), draw(gatherIndices())
    x = draw(arrays(dtype, (planes, 1, h, w)))
    per = draw(st.integers(1, len(rows)))
    return dtype, [x, rows, cols, h, w, len(rows), len(cols), per,
                   numpy.full((planes, 1, len(rows), len(cols)), numpy.nan, dtype)]


def gatherOracle(x, rows, cols, h, w, outH, outW, per, y):
    out = numpy.empty(y.shape)
    for plane, oy, ox in numpy.ndindex(y.shape[0], outH, outW):
        out[plane, 0, oy, ox] = x[plane, 0, rows[oy], cols[ox]]
    return [out]


@st.composite
def scatterCases(draw):
    dtype, (planes, h, w, rows, cols) = draw(floatDtypes()), draw(gatherIndices())
    grad = draw(arrays(dtype, (planes, 1, len(rows), len(cols))))
    return dtype, [grad, rows, cols, h, w, len(rows), len(cols), numpy.full((planes, 1, h, w), numpy.nan, dtype)]


def scatterOracle(grad, rows, cols, h, w, outH, outW, gradX):
    out = numpy.zeros(gradX.shape)
    for plane, oy, ox in numpy.ndindex(grad.shape[0], outH, outW):
        out[plane, 0, rows[oy], cols[ox]] += grad[plane, 0, oy, ox]
    return [out]


def blocks(length, rows):
    return -(-length // rows)


def im2colSize(args):
    """Elements of im2col: one per block of taps, block of rows and block of columns of each (n, c) image."""
    _, batch, maps, _, _, kh, kw, *_, outH, outW, _, taps, rows, span, _, _, _ = args
    return batch * maps * blocks(kh * kw, taps) * blocks(outH, rows) * blocks(outW, span)


def maxPoolSize(args):
    """Elements of max pooling: one per block of rows of each (n, c) output plane."""
    _, batch, maps, *_, outH, outW, _, rows, _, _ = args
    return batch * maps * blocks(outH, rows)


def maxUnpoolSize(args):
    """Elements of max unpooling: one per (n, c) plane."""
    return args[2] * args[3]


def col2imSize(args):
    """Elements of col2im: one per block of rows and block of columns of each (n, c) image plane."""
    _, batch, maps, h, w, *_, rows, span, _, _, _ = args
    return batch * maps * blocks(h, rows) * blocks(w, span)


CASES = {
    "gather2d": (gatherKer, gatherCases(), gatherOracle, lambda args: args[0].shape[0] * blocks(args[5], args[7])),
    "scatter2d": (scatterKer, scatterCases(), scatterOracle, lambda args: args[0].shape[0]),
    "im2col": (im2colKer, im2colCases(), im2colOracle, im2colSize),
    "im2colSame": (im2colSameKer, im2colSameCases(), im2colSameOracle, lambda args: args[2] * args[3]),
    "im2colGather": (im2colGatherKer, im2colGatherCases(), im2colGatherOracle,
                     lambda args: args[3] * -(-args[2] // args[7])),
    "col2im": (col2imKer, col2imCases(), col2imOracle, col2imSize),
    "maxPool": (maxPoolKer, maxPoolCases(), maxPoolOracle, maxPoolSize),
    "maxPoolWindows": (maxPoolWindowsKer, maxPoolCases(), maxPoolOracle, maxPoolSize),
    "maxPoolGather": (maxPoolGatherKer, maxPoolGatherCases(), maxPoolGatherOracle, lambda args: -(-args[2] // args[3])),
    "maxUnpool": (maxUnpoolKer, maxUnpoolCases(), maxUnpoolOracle, maxUnpoolSize),
    "avgUnpool": (avgUnpoolKer, avgUnpoolCases(), avgUnpoolOracle, None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel(name):
    kernel, cases, oracle, size = CASES[name]
    checkKernel(kernel, cases, oracle, size=size)
