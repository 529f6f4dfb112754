"""Conv2D, MaxPool2D and AvgPool2D: forward against direct float64 loops, numerical gradients in float64 over
hypothesis-drawn geometries, and bad input (an empty batch for every convolution, pool and normalisation of
maps)."""

import numpy
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minidl import ModuleError, nn
from minidl.backend import isGpu, toDevice, toHost
from minidl.nn import Activation, Add, AvgPool2D, BatchNorm2D, Conv2D, Graph, Identity, MaxPool2D, conv2d, relu
from minidl.nn import im2col as im2colModule
from minidl.nn import maxpool2d as maxPoolModule
from minidl.testing import checkGradients


def outSide(side, size, stride, pad, dilation):
    return (side + 2 * pad - dilation * (size - 1) - 1) // stride + 1


@st.composite
def convCases(draw):
    """A float64 Conv2D with random bias and an input that it fits."""
    groups = draw(st.integers(1, 2))
    inmaps, outmaps = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    def sides(low, high):
        return draw(st.integers(low, high)), draw(st.integers(low, high))

    size, stride, pad, dilation = sides(1, 3), sides(1, 2), sides(0, 2), sides(1, 2)
    height, width = draw(st.integers(2, 6)), draw(st.integers(2, 6))
    assume(min(outSide(s, *args) for s, args in zip((height, width), zip(size, stride, pad, dilation))) >= 1)
    useBias = draw(st.booleans())
    conv = Conv2D(inmaps, outmaps, size, stride, pad, dilation, groups, useBias=useBias, dtype=numpy.float64)
    rng = numpy.random.default_rng(draw(st.integers(0, 2**16)))
    if useBias:
        conv.vars["b"].set(rng.standard_normal(outmaps))
    x = toDevice(rng.standard_normal((draw(st.integers(1, 2)), inmaps, height, width)))
    return conv, x


def directConv(x, weights, bias, stride, pad, dilation, groups):
    """y[n, o, oy, ox] = b[o] + Σ W[o, c, ky, kx] xpad[n, group(o) c, oy sy + ky dy, ox sx + kx dx], by loops."""
    (sy, sx), (ph, pw), (dy, dx) = stride, pad, dilation
    outmaps, groupMaps, kh, kw = weights.shape
    padded = numpy.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    outH = (padded.shape[2] - dy * (kh - 1) - 1) // sy + 1
    outW = (padded.shape[3] - dx * (kw - 1) - 1) // sx + 1
    out = numpy.zeros((x.shape[0], outmaps, outH, outW))
    for n, o, oy, ox in numpy.ndindex(out.shape):
        first = o // (outmaps // groups) * groupMaps
        patch = padded[n, first:first + groupMaps, oy * sy:oy * sy + dy * (kh - 1) + 1:dy,
                       ox * sx:ox * sx + dx * (kw - 1) + 1:dx]
        out[n, o, oy, ox] = (patch * weights[o]).sum() + (bias[o] if bias is not None else 0)
    return out


@given(convCases())
def test_conv_forward_matches_direct_convolution(case):
    conv, x = case
    bias = toHost(conv.b) if conv.useBias else None
    w = conv.window
    expected = directConv(toHost(x), toHost(conv.W), bias, w.stride, w.pad, w.dilation, conv.groups)
    numpy.testing.assert_allclose(toHost(conv(x)), expected, rtol=1e-12, atol=1e-12)


def test_conv_float32_forward_matches_direct_convolution():
    conv = Conv2D(4, 6, 3, stride=2, pad=1, groups=2)
    x = numpy.random.default_rng(0).standard_normal((2, 4, 7, 7)).astype(numpy.float32)
    expected = directConv(x.astype(numpy.float64), toHost(conv.W).astype(numpy.float64), toHost(conv.b),
                          (2, 2), (1, 1), (1, 1), 2)
    numpy.testing.assert_allclose(toHost(conv(toDevice(x))), expected, rtol=1e-5, atol=1e-5)


@given(convCases())
def test_conv_gradients(case):
    conv, x = case
    checkGradients(conv, x)


@pytest.mark.parametrize("inmaps, outmaps, size, stride, pad, dilation, groups, algorithm", [
    (3, 4, 1, 1, 0, 1, 1, "pointwise"),
    (4, 6, 1, 1, 0, 1, 2, "pointwise"),
    (3, 3, 3, 2, 1, 1, 3, "depthwise"),
    (2, 6, (3, 2), (1, 2), (2, 1), (1, 2), 2, "depthwise"),  # three outputs per input map
    (3, 3, 3, 1, 1, 2, 3, "depthwise"),  # stride 1: ∂x by the forward kernel on grad, window flipped
    (2, 2, 2, 1, 2, 1, 2, "depthwise"),  # stride 1 but pad > d (k - 1): ∂x by its own kernel
    (4, 4, 1, 2, 0, 1, 2, "im2col"),  # 1x1 but strided: not the plain product
    (4, 6, 3, 1, 1, 2, 2, "im2col"),  # more output maps: ∂x by col2im
    (6, 4, 3, 1, 1, 2, 2, "im2col"),  # stride 1, fewer output maps: ∂x as the full correlation
])
@pytest.mark.parametrize("perImageFrom, wideBelow", [(1, 0), (10**9, 0), (1, 10**9)],
                         ids=["per-image products", "one product over the batch", "the batch inside im2col's columns"])
def test_every_algorithm_matches_the_direct_convolution_and_numerical_gradients(
        inmaps, outmaps, size, stride, pad, dilation, groups, algorithm, perImageFrom, wideBelow, monkeypatch):
    monkeypatch.setattr(conv2d, "PER_IMAGE_FROM", perImageFrom)
    monkeypatch.setattr(conv2d, "WIDE_BELOW", wideBelow)
    rng = numpy.random.default_rng(3)
    conv = Conv2D(inmaps, outmaps, size, stride, pad, dilation, groups, dtype=numpy.float64)
    conv.vars["b"].set(rng.standard_normal(outmaps))
    assert conv.algorithm == algorithm
    x = toDevice(rng.standard_normal((2, inmaps, 5, 6)))
    w = conv.window
    expected = directConv(toHost(x), toHost(conv.W), toHost(conv.b), w.stride, w.pad, w.dilation, groups)
    numpy.testing.assert_allclose(toHost(conv(x)), expected, rtol=1e-12, atol=1e-12)
    checkGradients(conv, x)


@st.composite
def poolCases(draw):
    size = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = tuple(draw(st.integers(0, side // 2)) for side in size)
    height, width = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    assume(min(outSide(s, *args, 1) for s, args in zip((height, width), zip(size, stride, pad))) >= 1)
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), height, width)
    x = numpy.random.default_rng(draw(st.integers(0, 2**16))).standard_normal(shape)
    return size, stride, pad, x


def poolOracle(x, size, stride, pad, reduce, padValue):
    padded = numpy.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])), constant_values=padValue)
    outH, outW = ((padded.shape[2 + a] - size[a]) // stride[a] + 1 for a in (0, 1))
    out = numpy.empty(x.shape[:2] + (outH, outW))
    for n, c, oy, ox in numpy.ndindex(out.shape):
        out[n, c, oy, ox] = reduce(padded[n, c, oy * stride[0]:oy * stride[0] + size[0],
                                          ox * stride[1]:ox * stride[1] + size[1]])
    return out


@pytest.mark.parametrize("pool, reduce, padValue", [(MaxPool2D, numpy.max, -numpy.inf), (AvgPool2D, numpy.mean, 0.0)],
                         ids=["max", "avg"])
@given(case=poolCases())
def test_pool_forward_and_gradients(pool, reduce, padValue, case):
    size, stride, pad, x = case
    module = pool(size, stride, pad)
    numpy.testing.assert_allclose(toHost(module(toDevice(x))), poolOracle(x, size, stride, pad, reduce, padValue),
                                  rtol=1e-12, atol=1e-12)
    checkGradients(module, toDevice(x))


def ceilPoolOracle(x, size, stride, pad, kind):
    """PyTorch's ceil_mode by loops: a last window that starts before the trailing pad counts; average pools
    divide by the taps inside the padded input, max pools take the largest pixel inside the image."""
    counts = []
    for length, k, s, p in zip(x.shape[2:], size, stride, pad):
        count = -(-(length + 2 * p - k) // s) + 1
        counts.append(count - ((count - 1) * s >= length + p))
    out = numpy.empty(x.shape[:2] + tuple(counts))
    for oy, ox in numpy.ndindex(*counts):
        y0, x0 = oy * stride[0] - pad[0], ox * stride[1] - pad[1]
        patch = x[:, :, max(y0, 0):min(y0 + size[0], x.shape[2]), max(x0, 0):min(x0 + size[1], x.shape[3])]
        taps = ((min(y0 + size[0], x.shape[2] + pad[0]) - y0) * (min(x0 + size[1], x.shape[3] + pad[1]) - x0))
        out[:, :, oy, ox] = patch.max(axis=(2, 3)) if kind == "max" else patch.sum(axis=(2, 3)) / taps
    return out


@pytest.mark.parametrize("pool, kind", [(MaxPool2D, "max"), (AvgPool2D, "avg")], ids=["max", "avg"])
@pytest.mark.parametrize("size, stride, pad, side", [(2, 2, 0, 5), (3, 2, 1, 6), ((3, 2), (3, 2), (1, 0), 6)])
def test_ceil_mode_counts_the_last_partial_window_and_has_numerical_gradients(pool, kind, size, stride, pad, side):
    x = numpy.random.default_rng(4).standard_normal((2, 2, side, side - 1))
    module = pool(size, stride, pad, ceilMode=True)
    w = module.window
    expected = ceilPoolOracle(x, w.size, w.stride, w.pad, kind)
    assert expected.shape[2:] != pool(size, stride, pad)(toDevice(x)).shape[2:], "the case must gain a window"
    numpy.testing.assert_allclose(toHost(module(toDevice(x))), expected, rtol=1e-12, atol=1e-12)
    checkGradients(module, toDevice(x))


@pytest.mark.skipif(isGpu, reason="the host's choice of max pooling kernel")
def test_rows_narrower_than_a_vector_pool_by_gathers_where_no_window_reads_padding(monkeypatch):
    gathers, gather = [], maxPoolModule.maxPoolGatherKer
    monkeypatch.setattr(maxPoolModule, "maxPoolGatherKer", lambda *args, **kw: gathers.append(args[0].shape) or
                        gather(*args, **kw))
    narrow, wide = numpy.zeros((2, 3, 8, 8), numpy.float32), numpy.zeros((1, 1, 40, 40), numpy.float32)
    for module, x in ((MaxPool2D(2), narrow), (MaxPool2D(3, 2, 1), narrow), (MaxPool2D(2, ceilMode=True),
                      narrow[..., :7]), (MaxPool2D(2), wide)):
        module(toDevice(x))
    assert gathers == [(2, 3, 8, 8)]  # not: padding, a ceil mode's window past the end, rows of 20


@pytest.mark.skipif(isGpu, reason="the host's choice of im2col kernel")
def test_maps_of_at_most_a_vector_of_outputs_gather_their_columns_over_the_batch(monkeypatch):
    monkeypatch.setattr("minidl.nn.conv2d.directly", lambda *args: False)  # im2col's, not a direct convolution
    gathers, gather = [], im2colModule.im2colGatherKer
    monkeypatch.setattr(im2colModule, "im2colGatherKer", lambda *args, **kw: gathers.append(args[0].shape) or
                        gather(*args, **kw))
    for side in (4, 5, 8):
        conv = Conv2D(8, 16, 3, pad=1)
        y = conv(toDevice(numpy.ones((4, 8, side, side), numpy.float32)))
        weights, bias = toHost(conv.W).astype(numpy.float64), toHost(conv.b).astype(numpy.float64)
        expected = weights.sum(axis=(1, 2, 3)) + bias  # an interior output of ones, in float64
        bound = 73 * numpy.finfo(numpy.float32).eps * (abs(weights).sum(axis=(1, 2, 3)) + abs(bias))  # 72 terms + b
        assert (abs(toHost(y)[:, :, 1, 1] - expected) <= bound).all()
    assert gathers == [(4, 8, 4, 4)]  # 25 and 64 outputs a map: plane by plane


def test_max_pool_routes_the_gradient_to_the_maximum_only():
    x = toDevice(numpy.array([[[[1.0, 5.0], [3.0, 2.0]]]]))
    pool = MaxPool2D()
    pool(x)
    numpy.testing.assert_array_equal(toHost(pool.backward(toDevice(numpy.array([[[[7.0]]]])))),
                                     [[[[0.0, 7.0], [0.0, 0.0]]]])


def test_channel_count_mismatch_names_the_shapes():
    conv = Conv2D(3, 4, 3)
    with pytest.raises(ModuleError, match=r"3 maps.*\(2, 5, 8, 8\)"):
        conv(toDevice(numpy.zeros((2, 5, 8, 8), numpy.float32)))


@pytest.mark.parametrize("module", [Conv2D(1, 1, 7, pad=1), Conv2D(1, 1, 3, pad=1, dilation=3), MaxPool2D(7, 1, 1)],
                         ids=["conv", "dilated conv", "pool"])
def test_window_larger_than_the_padded_input_names_the_shapes(module):
    with pytest.raises(ModuleError, match=r"larger than the padded input \(6, 6\) \(input \(4, 4\)"):
        module(toDevice(numpy.zeros((1, 1, 4, 4), numpy.float32)))


def test_bad_construction_and_input():
    with pytest.raises(ModuleError, match="multiples of groups"):
        Conv2D(3, 4, 3, groups=2)
    with pytest.raises(ModuleError, match="size must be an int or a pair"):
        Conv2D(3, 4, (3, 3, 3))
    with pytest.raises(ModuleError, match="at most half the window"):
        MaxPool2D(2, 2, pad=2)
    with pytest.raises(ModuleError, match="4 dimensions"):
        Conv2D(3, 4, 3)(toDevice(numpy.zeros((3, 8, 8), numpy.float32)))
    with pytest.raises(ModuleError, match="dtype float32"):
        Conv2D(3, 4, 3)(toDevice(numpy.zeros((1, 3, 8, 8))))


EMPTY_INPUT_CASES = [  # (module, input shape) with no sample (or no position): the kernels' index arithmetic
    (lambda: nn.Conv1D(2, 3, 3), (0, 2, 5)),    # divided by the empty sizes or NumPy could not reshape
    (lambda: nn.Conv2D(2, 3, 3, pad=1), (0, 2, 5, 5)),
    (lambda: nn.Conv3D(2, 3, 2), (0, 2, 3, 3, 3)),
    (lambda: nn.Deconv1D(2, 3, 3, stride=2), (0, 2, 3)),
    (lambda: nn.Deconv2D(2, 3, 3, stride=2), (0, 2, 3, 3)),
    (lambda: nn.Deconv3D(2, 3, 2), (0, 2, 3, 3, 3)),
    (lambda: nn.MaxPool1D(), (0, 2, 4)),
    (lambda: nn.MaxPool2D(), (0, 2, 4, 4)),
    (lambda: nn.MaxPool2D(), (2, 0, 4, 4)),
    (lambda: nn.MaxPool3D(), (0, 2, 4, 4, 4)),
    (lambda: nn.AvgPool1D(), (0, 2, 4)),
    (lambda: nn.AvgPool2D(), (0, 2, 4, 4)),
    (lambda: nn.AvgPool3D(), (0, 2, 4, 4, 4)),
    (lambda: nn.BatchNorm2D(2).evalMode(), (0, 2, 4, 4)),
    (lambda: nn.BatchNorm(2).evalMode(), (0, 2)),
    (lambda: nn.GroupNorm(1, 2), (0, 2, 3)),
    (lambda: nn.InstanceNorm2D(2), (0, 2, 3, 3)),
    (lambda: nn.Penalty(), (0, 3)),
]


@pytest.mark.parametrize("make, shape", EMPTY_INPUT_CASES)
def test_an_empty_batch_is_refused_naming_what_was_expected(make, shape):
    module = make()
    with pytest.raises(ModuleError, match=r"at least one sample and one value per sample, got shape \(\d"):
        module(toDevice(numpy.zeros(shape, numpy.float32)))


def test_flatten_keeps_an_empty_batch_empty():
    flatten = nn.Flatten()
    assert flatten(toDevice(numpy.zeros((0, 2, 3), numpy.float32))).shape == (0, 6)
    assert flatten.backward(toDevice(numpy.zeros((0, 6), numpy.float32))).shape == (0, 2, 3)


def test_a_failed_backward_leaves_the_gradients_unchanged():
    conv = Conv2D(2, 3, 3)
    conv(toDevice(numpy.ones((1, 2, 5, 5), numpy.float32)))
    with pytest.raises(ModuleError, match=r"shape \(1, 3, 3, 3\)"):
        conv.backward(toDevice(numpy.ones((1, 3, 4, 4), numpy.float32)))
    assert not toHost(conv.vars["W"].grad).any() and not toHost(conv.vars["b"].grad).any()


def test_residual_block_gradients():
    """Conv2D -> BatchNorm2D -> relu -> Conv2D, added to the input, as a Graph in float64."""
    rng = numpy.random.default_rng(5)
    inp = Identity(name="x").node()
    first, norm, second = (Conv2D(2, 3, 3, pad=1, dtype=numpy.float64), BatchNorm2D(3, dtype=numpy.float64),
                           Conv2D(3, 2, 3, pad=1, dtype=numpy.float64))
    norm.vars["scale"].set(rng.uniform(0.5, 2, 3))
    hidden = Activation(relu).node(norm.node(first.node(inp)))
    block = Graph(inputs=inp, outputs=Add().node(second.node(hidden), inp))
    checkGradients(block, toDevice(rng.standard_normal((2, 2, 4, 4))))


@pytest.mark.parametrize("pool", [MaxPool2D, AvgPool2D], ids=["max", "avg"])
def test_pooling_refuses_integer_input(pool):
    with pytest.raises(ModuleError, match=r"floating dtype, got int32"):
        pool()(toDevice(numpy.ones((1, 1, 4, 4), numpy.int32)))
