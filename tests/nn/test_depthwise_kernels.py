"""The depthwise convolution's direct kernels (forward and ∂W by rows and by "same" planes, ∂W's parts per row on
a GPU, ∂x): the NumPy
references against float64 oracles written with explicit loops over the padded input, the host-compiled CUDA text
(and CuPy) against them; NaN, ±inf, -0.0 and subnormals drawn in every array."""

import numpy
import pytest
from hypothesis import assume
from hypothesis import strategies as st

from minidl.nn.depthwise import (
    depthwiseForwardKer,
    depthwiseGradInputKer,
    depthwiseGradWeightRowsKer,
    depthwiseGradWeightsKer,
    depthwiseSameGradWeightsKer,
    depthwiseSameKer,
)
from minidl.testing import arrays, checkKernel, floatDtypes
from tests.nn.windows import windows


@st.composite
def geometries(draw):
    """(batch, maps, mult, h, w, kh, kw, sy, sx, ph, pw, dy, dx, outH, outW), the window fitting at least once."""
    window = draw(windows(maxWidth=12))
    return draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 2)), *window


def padded(x, ph, pw):
    return numpy.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def taps(geometry):
    """Every (o, c, oy, ox, ky, kx, padded row, padded column) of the convolution."""
    _, maps, mult, _, _, kh, kw, sy, sx, _, _, dy, dx, outH, outW = geometry
    for o, oy, ox, ky, kx in numpy.ndindex(maps * mult, outH, outW, kh, kw):
        yield o, o // mult, oy, ox, ky, kx, oy * sy + ky * dy, ox * sx + kx * dx


def forwardOracle(rowBias, x, weights, *geometryAndOut):
    *geometry, y = geometryAndOut
    xpad, out = padded(x, geometry[9], geometry[10]), numpy.zeros(y.shape)
    for o, c, oy, ox, ky, kx, row, col in taps(geometry):
        out[:, o, oy, ox] += weights[o, 0, ky, kx] * xpad[:, c, row, col]
    return [out + rowBias[..., None]]


def gradInputOracle(grad, weights, *geometryAndOut):
    *geometry, gradX = geometryAndOut
    ph, pw = geometry[9], geometry[10]
    out = numpy.zeros(padded(gradX, ph, pw).shape)
    for o, c, oy, ox, ky, kx, row, col in taps(geometry):
        out[:, c, row, col] += weights[o, 0, ky, kx] * grad[:, o, oy, ox]
    return [out[:, :, ph:out.shape[2] - ph, pw:out.shape[3] - pw]]


def gradWeightsOracle(grad, x, *geometryAndOut):
    *geometry, gradW = geometryAndOut
    xpad, out = padded(x, geometry[9], geometry[10]), numpy.zeros(gradW.shape)
    for o, c, oy, ox, ky, kx, row, col in taps(geometry):
        out[o, 0, ky, kx] += (grad[:, o, oy, ox] * xpad[:, c, row, col]).sum()
    return [out]


@st.composite
def forwardCases(draw):
    dtype, geometry = draw(floatDtypes()), draw(geometries())
    batch, maps, mult, h, w, kh, kw, *_, outH, outW = geometry
    rowBias, x = draw(arrays(dtype, (batch, maps * mult, outH))), draw(arrays(dtype, (batch, maps, h, w)))
    weights = draw(arrays(dtype, (maps * mult, 1, kh, kw)))
    return dtype, [rowBias, x, weights, *geometry, numpy.full((batch, maps * mult, outH, outW), numpy.nan, dtype)]


@st.composite
def sameGeometries(draw):
    """Stride 1 and as many output as input columns: 2 pw = dx (kw - 1); any rows."""
    kh, kw, dy, dx = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    assume(dx * (kw - 1) % 2 == 0)
    ph, pw = draw(st.integers(0, 2)), dx * (kw - 1) // 2
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 21))
    outH = h + 2 * ph - dy * (kh - 1)
    assume(outH >= 1)
    return draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 2)), h, w, kh, kw, 1, 1, ph, pw, \
        dy, dx, outH, w


@st.composite
def sameCases(draw):
    dtype, geometry = draw(floatDtypes()), draw(sameGeometries())
    batch, maps, mult, h, w, kh, kw, *_, outH, outW = geometry
    x, weights = draw(arrays(dtype, (batch, maps, h, w))), draw(arrays(dtype, (maps * mult, 1, kh, kw)))
    bias = draw(arrays(dtype, (maps * mult,)))
    return dtype, [x, weights, bias, columns(outH, w), *geometry,
                   numpy.full((batch, maps * mult, outH, outW), numpy.nan, dtype)]


def columns(rows, width):
    return numpy.tile(numpy.arange(width, dtype=numpy.int32), rows)


def sameOracle(x, weights, bias, column, *geometryAndOut):
    batch, outH = geometryAndOut[0], geometryAndOut[-3]
    return forwardOracle(numpy.broadcast_to(bias[None, :, None], (batch, len(bias), outH)), x, weights,
                         *geometryAndOut)


@st.composite
def sameGradWeightsCases(draw):
    dtype, geometry = draw(floatDtypes()), draw(sameGeometries())
    batch, maps, mult, h, w, kh, kw, *_, outH, outW = geometry
    grad, x = draw(arrays(dtype, (batch, maps * mult, outH, outW))), draw(arrays(dtype, (batch, maps, h, w)))
    return dtype, [grad, x, columns(outH, w), *geometry, numpy.full((maps * mult, 1, kh, kw), numpy.nan, dtype)]


def sameGradWeightsOracle(grad, x, column, *geometryAndOut):
    return gradWeightsOracle(grad, x, *geometryAndOut)


@st.composite
def gradInputCases(draw):
    dtype, geometry = draw(floatDtypes()), draw(geometries())
    batch, maps, mult, h, w, kh, kw, *_, outH, outW = geometry
    grad, weights = draw(arrays(dtype, (batch, maps * mult, outH, outW))), draw(arrays(dtype, (maps * mult, 1, kh, kw)))
    return dtype, [grad, weights, *geometry, numpy.full((batch, maps, h, w), numpy.nan, dtype)]


@st.composite
def gradWeightsCases(draw):
    dtype, geometry = draw(floatDtypes()), draw(geometries())
    batch, maps, mult, h, w, kh, kw, *_, outH, outW = geometry
    grad, x = draw(arrays(dtype, (batch, maps * mult, outH, outW))), draw(arrays(dtype, (batch, maps, h, w)))
    return dtype, [grad, x, *geometry, numpy.full((maps * mult, 1, kh, kw), numpy.nan, dtype)]


@st.composite
def gradWeightRowsCases(draw):
    dtype, geometry = draw(floatDtypes()), draw(geometries())
    batch, maps, mult, h, w, kh, kw, *_, outH, outW = geometry
    grad, x = draw(arrays(dtype, (batch, maps * mult, outH, outW))), draw(arrays(dtype, (batch, maps, h, w)))
    return dtype, [grad, x, *geometry, numpy.full((maps * mult * kh * kw, batch * outH), numpy.nan, dtype)]


def gradWeightRowsOracle(grad, x, *geometryAndOut):
    """parts[(o, ky, kx), (n, oy)]: one output row's products, by the same explicit taps."""
    *geometry, parts = geometryAndOut
    batch, kh, kw, outH = geometry[0], geometry[5], geometry[6], geometry[-2]
    xpad, out = padded(x, geometry[9], geometry[10]), numpy.zeros(parts.shape).reshape(-1, kh, kw, batch, outH)
    for o, c, oy, ox, ky, kx, row, col in taps(geometry):
        out[o, ky, kx, :, oy] += grad[:, o, oy, ox] * xpad[:, c, row, col]
    return [out.reshape(parts.shape)]


CASES = {
    "forward": (depthwiseForwardKer, forwardCases(), forwardOracle),
    "gradWeightRows": (depthwiseGradWeightRowsKer, gradWeightRowsCases(), gradWeightRowsOracle),
    "gradInput": (depthwiseGradInputKer, gradInputCases(), gradInputOracle),
    "gradWeights": (depthwiseGradWeightsKer, gradWeightsCases(), gradWeightsOracle),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel(name):
    kernel, cases, oracle = CASES[name]
    checkKernel(kernel, cases, oracle, size=(lambda args: args[-1].size) if name == "gradWeightRows" else None)


def test_same_planes_kernels():
    checkKernel(depthwiseSameKer, sameCases(), sameOracle, size=lambda args: args[4] * args[5] * args[6])
    checkKernel(depthwiseSameGradWeightsKer, sameGradWeightsCases(), sameGradWeightsOracle)


def test_an_infinite_weight_reaches_the_outputs_whose_window_overlaps_the_padding_as_nan():
    x, weights = numpy.ones((1, 1, 2, 2)), numpy.array([[[[numpy.inf, 1.0], [1.0, 1.0]]]])
    y = numpy.empty((1, 1, 3, 3))
    depthwiseForwardKer(numpy.zeros((1, 1, 3)), x, weights, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 3, 3, y)
    with numpy.errstate(invalid="ignore"):
        expected = forwardOracle(numpy.zeros((1, 1, 3)), x, weights, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 3, 3,
                                 y)[0]
    numpy.testing.assert_array_equal(y, expected)
    assert numpy.isnan(y[0, 0, 0]).all() and numpy.isinf(y[0, 0, 1:, 1:]).all()


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("stride", [1, 2])
def test_rows_wide_enough_for_the_vector_loops_match_the_oracle(name, stride):
    """Rows of 19 columns: the host path's 8-wide loops run, which the drawn rows of at most 12 seldom reach."""
    geometry = (2, 2, 2, 4, 19, 3, 3, stride, stride, 1, 1, 1, 1, (4 - 1) // stride + 1, (19 - 1) // stride + 1)
    batch, maps, mult, h, w, kh, kw, *_, outH, outW = geometry
    rng = numpy.random.default_rng(stride)
    x, grad = rng.standard_normal((batch, maps, h, w)), rng.standard_normal((batch, maps * mult, outH, outW))
    weights = rng.standard_normal((maps * mult, 1, kh, kw))
    args = {"forward": [rng.standard_normal((batch, maps * mult, outH)), x, weights, *geometry,
                        numpy.empty(grad.shape)],
            "gradInput": [grad, weights, *geometry, numpy.empty(x.shape)],
            "gradWeights": [grad, x, *geometry, numpy.empty(weights.shape)],
            "gradWeightRows": [grad, x, *geometry, numpy.empty((weights.size, batch * outH))]}[name]
    kernel, _, oracle = CASES[name]
    expected = oracle(*args)[0]
    size = {"size": args[-1].size} if name == "gradWeightRows" else {}
    numpy.testing.assert_allclose(kernel.callCompiled(*args, **size), expected, rtol=1e-12, atol=1e-12)
    numpy.testing.assert_allclose(kernel.callNumpy(*args, **size), expected, rtol=1e-12, atol=1e-12)


def test_a_pad_taller_than_the_output_writes_nothing_past_the_plane():
    """h 1, ph 2, kh 3, dy 2: one output row, while the first tap's rows start two rows down; the flat ranges must
    stop at the plane's end (they once wrote past it, into whatever followed the output)."""
    geometry = (1, 1, 1, 1, 3, 3, 1, 1, 1, 2, 0, 2, 1, 1, 3)
    x, bias = numpy.arange(1.0, 4.0).reshape(1, 1, 1, 3), numpy.zeros(1)
    weights = numpy.array([numpy.inf, 1.0, 1.0]).reshape(1, 1, 3, 1)  # its padded taps add inf 0 = NaN
    guarded = numpy.full(3 + 8, -99.0)
    y = guarded[:3].reshape(1, 1, 1, 3)
    depthwiseSameKer.callCompiled(x, weights, bias, columns(1, 3), *geometry, y, size=1)
    with numpy.errstate(invalid="ignore"):
        numpy.testing.assert_array_equal(y, sameOracle(x, weights, bias, None, *geometry, y)[0])
    numpy.testing.assert_array_equal(guarded[3:], -99.0)
