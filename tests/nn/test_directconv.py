"""Direct convolutions of stride 1 on the CPU (minidl.nn.directconv): against float64 loops over the padded input
(forward, the full convolution that gives ∂x, ∂W), in place and padded, through Conv2D and Conv1D against the same
loops and numerical gradients, the same bits on one thread and two, and recorded and replayed by a tape."""

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.backend import hostkernel, toHost
from minidl.nn import Conv1D, Conv2D
from minidl.nn.directconv import addDirectWeightGradient, directConvolution, directly, inPlace
from minidl.nn.im2col import Window
from minidl.testing import checkGradients
from tests.nn.test_conv_pool import directConv
from tests.tapereplay import assertReplaysOnNewData
from tests.threaddigest import assertSameBitsOnOneThreadAsOnTwo

F64 = numpy.float64
pytestmark = pytest.mark.skipif(not directly(Window(3), 1, numpy.float32),
                                reason="direct convolutions run on the CPU with compiled kernels only")


def fullOracle(grad, weights, pad, dilation):
    """∂x of y = conv(x, W) for grad ∂y, by the chain rule over the loops: ∂x[n, c, y', x'] = Σ ∂y[n, o, oy, ox]
    W[o, c, ky, kx] where oy - ph + ky dy = y' (the adjoint, not the flipped formula the kernel uses)."""
    (ph, pw), (dy, dx) = pad, dilation
    outmaps, maps, kh, kw = weights.shape
    batch, _, outH, outW = grad.shape
    height, width = outH - 2 * ph + dy * (kh - 1), outW - 2 * pw + dx * (kw - 1)
    padded = numpy.zeros((batch, maps, height + 2 * ph, width + 2 * pw))
    for ky in range(kh):
        for kx in range(kw):
            padded[:, :, ky * dy:ky * dy + outH, kx * dx:kx * dx + outW] += numpy.einsum(
                "noyx,oc->ncyx", grad, weights[:, :, ky, kx])
    return padded[:, :, ph:ph + height, pw:pw + width]


def weightOracle(x, grad, window):
    """∂W[o, c, ky, kx] = Σ_{n, oy, ox} grad[n, o, oy, ox] xpad[n, c, oy + ky dy, ox + kx dx], by slices."""
    (kh, kw), (ph, pw), (dy, dx) = window.size, window.pad, window.dilation
    padded = numpy.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    outH, outW = grad.shape[2:]
    out = numpy.zeros((grad.shape[1], x.shape[1], kh, kw))
    for ky in range(kh):
        for kx in range(kw):
            out[:, :, ky, kx] = numpy.einsum("noyx,ncyx->oc", grad,
                                             padded[:, :, ky * dy:ky * dy + outH, kx * dx:kx * dx + outW])
    return out


@st.composite
def geometries(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dy, dx = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, dy * (kh - 1))), draw(st.integers(0, dx * (kw - 1)))
    height = draw(st.integers(max(1, dy * (kh - 1) + 1 - 2 * ph), 19))
    width = draw(st.integers(max(1, dx * (kw - 1) + 1 - 2 * pw), 37))  # rows of less and more than two vectors
    batch, maps, outmaps = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 19))  # 8-map blocks
    dtype = draw(st.sampled_from([numpy.float32, numpy.float64]))
    return batch, maps, outmaps, height, width, Window((kh, kw), 1, (ph, pw), (dy, dx)), dtype


def sprinkled(values, rng, special):
    """``values`` with a few of NaN, inf and -inf put in at random places where ``special``."""
    if special:
        flat = values.reshape(-1)
        for value in (numpy.nan, numpy.inf, -numpy.inf):
            flat[rng.integers(0, flat.size, size=max(1, flat.size // 50))] = value
    return values


def assertSameValues(got, expected, tolerance):
    """NaN where expected is NaN, the same infinities, the finite values within ``tolerance``."""
    numpy.testing.assert_array_equal(numpy.isnan(got), numpy.isnan(expected))
    numpy.testing.assert_array_equal(numpy.isposinf(got), numpy.isposinf(expected))
    numpy.testing.assert_array_equal(numpy.isneginf(got), numpy.isneginf(expected))
    finite = numpy.isfinite(expected)
    numpy.testing.assert_allclose(got[finite], expected[finite], rtol=tolerance, atol=tolerance)


def assertMatchesLoops(geometry, useBias, special, seed):
    """Forward, ∂x and ∂W against loops; with ``special``, NaN and infinities in the data and the gradient (the
    weights stay finite: the full convolution multiplies its pads by them, the adjoint does not)."""
    batch, maps, outmaps, height, width, window, dtype = geometry
    rng = numpy.random.default_rng(seed)
    x = sprinkled(rng.standard_normal((batch, maps, height, width)).astype(dtype), rng, special)
    weights = rng.standard_normal((outmaps, maps, *window.size)).astype(dtype)
    bias = rng.standard_normal(outmaps).astype(dtype) if useBias else None
    tolerance = 1e-12 if dtype == numpy.float64 else 2e-5
    y = directConvolution(x, weights, bias, window)
    expected = directConv(x.astype(numpy.float64), weights.astype(numpy.float64), bias, (1, 1), window.pad,
                          window.dilation, 1)
    assert y.shape == expected.shape and y.dtype == dtype
    assertSameValues(y, expected, tolerance)

    grad = sprinkled(rng.standard_normal(y.shape).astype(dtype), rng, special)
    full = Window(window.size, 1, [d * (k - 1) - p for k, p, d in zip(window.size, window.pad, window.dilation)],
                  window.dilation)
    dx = directConvolution(grad, weights, None, full, flipped=True)
    assert dx.shape == x.shape and dx.dtype == dtype
    assertSameValues(dx, fullOracle(grad.astype(numpy.float64), weights.astype(numpy.float64), window.pad,
                                    window.dilation), tolerance)

    gradW = rng.standard_normal(weights.shape).astype(dtype)
    expected = gradW.astype(numpy.float64) + weightOracle(x.astype(numpy.float64), grad.astype(numpy.float64),
                                                          window)
    addDirectWeightGradient(x, grad, window, gradW)  # added into what it holds
    assertSameValues(gradW, expected, 10 * tolerance)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the oracles' inf - inf
@settings(max_examples=80, deadline=None)
@given(geometries(), st.booleans(), st.booleans(), st.integers(0, 2**16))
def test_direct_convolution_and_its_full_convolution_match_float64_loops(geometry, useBias, special, seed):
    assertMatchesLoops(geometry, useBias, special, seed)


AVX512 = "__AVX512F__" in hostkernel._compilerIdentity(hostkernel.findCompiler())


@st.composite
def sameWidthGeometries(draw):
    """Geometries whose output maps are as wide as the input's: 2 pw = dx (kw - 1)."""
    batch, maps, outmaps, height, width, window, dtype = draw(geometries())
    kw, dx = draw(st.sampled_from([1, 3, 5])), window.dilation[1]
    window = Window((window.size[0], kw), 1, (window.pad[0], dx * (kw - 1) // 2), window.dilation)
    return batch, maps, outmaps, height, width, window, dtype


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the oracles' inf - inf
@settings(max_examples=60, deadline=None)
@given(sameWidthGeometries(), st.booleans(), st.booleans(), st.integers(0, 2**16))
def test_same_width_convolutions_run_in_place_with_avx512_and_match_float64_loops(geometry, useBias, special, seed):
    """Maps of any width (one vector's lanes over several rows, a row over several vectors, a last vector part
    past the map), every tap's pads masked off, and the last block of fewer than 8 output maps."""
    batch, maps, outmaps, height, width, window, dtype = geometry
    assert inPlace((batch, maps, height, width), outmaps, window) == AVX512
    full = Window(window.size, 1, [d * (k - 1) - p for k, p, d in zip(window.size, window.pad, window.dilation)],
                  window.dilation)
    outH = height + 2 * window.pad[0] - window.dilation[0] * (window.size[0] - 1)
    assert inPlace((batch, outmaps, outH, width), maps, full) == AVX512  # ∂x's full convolution too
    assertMatchesLoops(geometry, useBias, special, seed)


def test_other_geometries_take_the_padded_kernels():
    assert not inPlace((2, 3, 10, 10), 4, Window(3))  # no padding: outW = width - 2
    assert not inPlace((2, 3, 10, 10), 4, Window(3, 1, (1, 2)))  # outW = width + 2


DIGEST = """
import hashlib, numpy
from minidl.nn.directconv import addDirectWeightGradient, directConvolution
from minidl.nn.im2col import Window
rng = numpy.random.default_rng(6)
parts = []
for shape, outmaps, window in (((5, 19, 16, 16), 20, Window(3, 1, 1)), ((5, 6, 9, 11), 9, Window(3, 1, (0, 2), 2)),
                               ((4, 7, 12, 12), 11, Window(3))):
    x = rng.standard_normal(shape).astype(numpy.float32)
    weights = rng.standard_normal((outmaps, shape[1], *window.size)).astype(numpy.float32)
    y = directConvolution(x, weights, None, window)
    gradW = numpy.zeros_like(weights)
    addDirectWeightGradient(x, y, window, gradW)
    parts += [y, gradW]
print(hashlib.sha256(b"".join(a.tobytes() for a in parts)).hexdigest())
"""


def test_the_same_bits_on_one_thread_as_on_two():
    """Each value is summed by one thread in one order, whichever thread it is: in place (the first two geometries
    with AVX-512) and padded."""
    assertSameBitsOnOneThreadAsOnTwo(DIGEST)


def countDirectCalls(monkeypatch):
    """The list to which Conv2D's every direct convolution appends its ``flipped`` (True: a ∂x)."""
    calls = []
    made = directConvolution

    def counted(*args, **kwargs):
        calls.append(kwargs.get("flipped", False))
        return made(*args, **kwargs)

    monkeypatch.setattr("minidl.nn.conv2d.directConvolution", counted)
    return calls


@pytest.mark.parametrize("module, shape", [
    (lambda: Conv2D(3, 11, 3, pad=1, dtype=F64), (2, 3, 9, 20)),  # more output maps than input maps: ∂x directly
    (lambda: Conv2D(5, 4, (3, 2), pad=(2, 1), dilation=(2, 1), dtype=F64), (2, 5, 7, 12)),
    (lambda: Conv2D(2, 3, 2, pad=2, dtype=F64), (2, 2, 6, 9)),  # pad > d (k - 1): ∂x by im2col's products, col2im
    (lambda: Conv1D(4, 6, 5, pad=2, dtype=F64), (3, 4, 40)),
])
@pytest.mark.parametrize("weightsFrom", [1, 10**9], ids=["direct dW", "dW by products"])
def test_conv2d_and_conv1d_run_directly_and_match_loops_and_numerical_gradients(module, shape, weightsFrom,
                                                                                 monkeypatch):
    calls = countDirectCalls(monkeypatch)
    monkeypatch.setattr("minidl.nn.conv2d.WIDE_BELOW", 0)  # these small maps would take the batch into im2col's columns
    monkeypatch.setattr("minidl.nn.conv2d.DIRECT_WEIGHTS_FROM", weightsFrom)
    if weightsFrom > 1:  # not in place either
        monkeypatch.setattr("minidl.nn.conv2d.inPlace", lambda *args: False)
    conv = module()
    conv.vars["b"].set(numpy.random.default_rng(1).standard_normal(conv.outmaps))
    x = numpy.random.default_rng(2).standard_normal(shape)
    w = conv.window
    planar = x if x.ndim == 4 else x[:, :, None, :]
    expected = directConv(planar, toHost(conv.W).reshape(conv.outmaps, conv.inmaps, *w.size), toHost(conv.b),
                          w.stride, w.pad, w.dilation, 1)
    numpy.testing.assert_allclose(toHost(conv(x)).reshape(expected.shape), expected, rtol=1e-12, atol=1e-12)
    assert calls == [False] and conv.col is None
    checkGradients(conv, x)
    assert True in calls or w.pad[0] > w.dilation[0] * (w.size[0] - 1)


def test_a_tape_replays_the_direct_convolution_on_new_data():
    window = Window(3, 1, 1)
    rng = numpy.random.default_rng(5)
    weights = rng.standard_normal((9, 4, 3, 3)).astype(numpy.float32)
    bias = rng.standard_normal(9).astype(numpy.float32)
    x, fresh = rng.standard_normal((2, 2, 4, 10, 10)).astype(numpy.float32)
    names = assertReplaysOnNewData(lambda data: directConvolution(data, weights, bias, window), [x], [fresh],
                                   "direct_conv")
    assert names == ["direct_conv"]


@pytest.mark.skipif(not AVX512, reason="maps are taken in place with AVX-512 only")
@pytest.mark.parametrize("maps, side, direct", [(16, 4, True), (4, 8, True), (256, 4, False), (16, 2, False)],
                         ids=["16 maps of 4x4", "4 maps of 8x8", "256 maps of 4x4", "16 maps of 2x2"])
def test_small_maps_go_direct_where_they_fill_a_vector_and_have_few_maps(maps, side, direct, monkeypatch):
    """Maps too small for a product per image: direct in place (forward, ∂x, ∂W) or im2col with the batch inside its
    columns (conv2d.IN_PLACE_SMALL_MAPS_UP_TO), the same values either way."""
    calls = countDirectCalls(monkeypatch)
    conv = Conv2D(maps, maps, 3, pad=1, dtype=F64)
    x = numpy.random.default_rng(3).standard_normal((32, maps, side, side))
    y = conv(x)
    expected = directConv(x, toHost(conv.W), toHost(conv.b), (1, 1), (1, 1), (1, 1), 1)
    numpy.testing.assert_allclose(toHost(y), expected, rtol=1e-12, atol=1e-12)
    grad = numpy.random.default_rng(4).standard_normal(y.shape)
    dx = conv.backward(grad)
    numpy.testing.assert_allclose(toHost(dx), fullOracle(grad, toHost(conv.W), (1, 1), (1, 1)), rtol=1e-12,
                                  atol=1e-12)
    numpy.testing.assert_allclose(toHost(conv.vars["W"].grad), weightOracle(x, grad, conv.window), rtol=1e-10,
                                  atol=1e-10)
    assert calls == ([False, True] if direct else [])
    assert (conv.col is None) == direct
