"""The convolution family beyond Conv2D (Conv1D, Deconv2D, Pad2D, Upsample2D, GlobalAvgPool2D, GroupNorm,
InstanceNorm2D): forward against float64 oracles written with loops or textbook formulas, float64 numerical
gradients, PyTorch's layers where torch is installed (weights carried over as they are), and bad input."""

import numpy
import pytest

from minidl import ModuleError
from minidl.backend import isGpu, toDevice, toHost
from minidl.nn import Conv1D, Conv2D, Deconv2D, GlobalAvgPool2D, GroupNorm, InstanceNorm2D, Pad2D, Upsample2D, conv2d
from minidl.nn.columnproducts import columnsImageByImage
from minidl.testing import checkGradients
from tests.optional import importTorch

F64 = numpy.float64


def randomParams(module, seed=1):
    """Every Variable of module set to standard normal values (bias and scale included), so checks see them."""
    rng = numpy.random.default_rng(seed)
    for var in module.getVarTable().values():
        var.set(rng.standard_normal(var.shape))
    return module


def inputs(shape, seed=0):
    return toDevice(numpy.random.default_rng(seed).standard_normal(shape))


def torchOrSkip():
    return importTorch()


# Conv1D

def directConv1d(x, weights, bias, stride, pad, dilation, groups):
    """y[n, o, t] = b[o] + Σ_{c, k} W[o, c, k] xpad[n, group(o) c, t s + k d], by loops."""
    outmaps, groupMaps, size = weights.shape
    padded = numpy.pad(x, ((0, 0), (0, 0), (pad, pad)))
    out = numpy.zeros((x.shape[0], outmaps, (padded.shape[2] - dilation * (size - 1) - 1) // stride + 1))
    for n, o, t in numpy.ndindex(out.shape):
        first = o // (outmaps // groups) * groupMaps
        for c, k in numpy.ndindex(groupMaps, size):
            out[n, o, t] += weights[o, c, k] * padded[n, first + c, t * stride + k * dilation]
        out[n, o, t] += bias[o]
    return out


CONV1D_CASES = [(2, 3, 3, 1, 1, 1, 1), (4, 2, 2, 2, 0, 2, 2), (3, 6, 3, 2, 2, 1, 3), (2, 4, 1, 1, 0, 1, 1),
                (3, 3, 3, 1, 1, 1, 3)]  # depthwise at stride 1: ∂x by the flipped forward kernel


@pytest.mark.parametrize("inmaps, outmaps, size, stride, pad, dilation, groups", CONV1D_CASES)
def test_conv1d_matches_loops_and_numerical_gradients(inmaps, outmaps, size, stride, pad, dilation, groups):
    conv = randomParams(Conv1D(inmaps, outmaps, size, stride, pad, dilation, groups, dtype=F64))
    assert conv.W.shape == (outmaps, inmaps // groups, size)
    x = inputs((2, inmaps, 7))
    expected = directConv1d(toHost(x), toHost(conv.W), toHost(conv.b), stride, pad, dilation, groups)
    numpy.testing.assert_allclose(toHost(conv(x)), expected, rtol=1e-12, atol=1e-12)
    checkGradients(conv, x)


# Deconv2D

def directDeconv(x, weights, bias, stride, pad, outpad, dilation, groups):
    """Every input pixel scatters W[c, o] times itself onto the output window it reaches, by loops."""
    (sy, sx), (ph, pw), (oy, ox), (dy, dx) = stride, pad, outpad, dilation
    inmaps, groupOut, kh, kw = weights.shape
    height, width = x.shape[2:]
    outH = (height - 1) * sy - 2 * ph + dy * (kh - 1) + oy + 1
    outW = (width - 1) * sx - 2 * pw + dx * (kw - 1) + ox + 1
    out = numpy.zeros((x.shape[0], groupOut * groups, outH, outW)) + bias.reshape(1, -1, 1, 1)
    for n, c, i, j, o, ky, kx in numpy.ndindex(x.shape[0], inmaps, height, width, groupOut, kh, kw):
        y, z = i * sy - ph + ky * dy, j * sx - pw + kx * dx
        if 0 <= y < outH and 0 <= z < outW:
            out[n, c // (inmaps // groups) * groupOut + o, y, z] += weights[c, o, ky, kx] * x[n, c, i, j]
    return out


DECONV_CASES = [  # inmaps, outmaps, size, stride, pad, outpad, dilation, groups
    (2, 3, 3, 1, 0, 0, 1, 1), (2, 3, 3, 2, 1, 1, 1, 1), (4, 2, (2, 3), (2, 1), (0, 1), (1, 0), (1, 2), 2),
    (3, 3, 3, 3, 1, 2, 1, 3),
]


@pytest.mark.parametrize("perImageFrom", [1, 10**9], ids=["per-image products", "one product over the batch"])
@pytest.mark.parametrize("inmaps, outmaps, size, stride, pad, outpad, dilation, groups", DECONV_CASES)
def test_deconv_matches_loops_and_numerical_gradients(inmaps, outmaps, size, stride, pad, outpad, dilation, groups,
                                                      perImageFrom, monkeypatch):
    monkeypatch.setattr(conv2d, "PER_IMAGE_FROM", perImageFrom)
    deconv = randomParams(Deconv2D(inmaps, outmaps, size, stride, pad, outpad, dilation, groups, dtype=F64))
    window = deconv.window
    assert deconv.W.shape == (inmaps, outmaps // groups, *window.size)
    x = inputs((2, inmaps, 3, 4))
    expected = directDeconv(toHost(x), toHost(deconv.W), toHost(deconv.b), window.stride, window.pad,
                            deconv.outpad, window.dilation, groups)
    numpy.testing.assert_allclose(toHost(deconv(x)), expected, rtol=1e-12, atol=1e-12)
    checkGradients(deconv, x)


def test_conv_family_matches_pytorch_with_the_same_weights():
    torch = torchOrSkip()
    x = numpy.random.default_rng(2).standard_normal((2, 4, 5, 6))
    deconv = randomParams(Deconv2D(4, 6, 3, stride=2, pad=1, outpad=1, groups=2, dtype=F64))
    theirs = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(toHost(deconv.W)),
                                                  torch.from_numpy(toHost(deconv.b)), 2, 1, 1, 2)
    numpy.testing.assert_allclose(toHost(deconv(toDevice(x))), theirs.numpy(), rtol=1e-12, atol=1e-12)
    conv = randomParams(Conv1D(4, 6, 3, stride=2, pad=1, dilation=2, groups=2, dtype=F64))
    theirs = torch.nn.functional.conv1d(torch.from_numpy(x[:, :, 0]), torch.from_numpy(toHost(conv.W)),
                                        torch.from_numpy(toHost(conv.b)), 2, 1, 2, 2)
    numpy.testing.assert_allclose(toHost(conv(toDevice(x[:, :, 0].copy()))), theirs.numpy(), rtol=1e-12, atol=1e-12)
    for mode in ("reflect", "replicate"):
        theirs = torch.nn.functional.pad(torch.from_numpy(x), (2, 1, 0, 3), mode=mode)
        numpy.testing.assert_array_equal(toHost(Pad2D((2, 1, 0, 3), mode)(toDevice(x))), theirs.numpy())
    theirs = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=(2, 3), mode="bilinear")
    numpy.testing.assert_allclose(toHost(Upsample2D((2, 3), "bilinear")(toDevice(x))), theirs.numpy(), rtol=1e-12,
                                  atol=1e-12)
    norm = randomParams(GroupNorm(2, 4, dtype=F64))
    theirs = torch.nn.functional.group_norm(torch.from_numpy(x), 2, torch.from_numpy(toHost(norm.scale)),
                                            torch.from_numpy(toHost(norm.bias)))
    numpy.testing.assert_allclose(toHost(norm(toDevice(x))), theirs.numpy(), rtol=1e-10, atol=1e-10)


# Pad2D

@pytest.mark.parametrize("mode, numpyMode", [("constant", "constant"), ("reflect", "reflect"), ("replicate", "edge")])
@pytest.mark.parametrize("pad", [1, (2, 0), (0, 3, 2, 1)], ids=["int", "pair", "left-right-top-bottom"])
def test_pad_matches_numpy_pad_and_numerical_gradients(mode, numpyMode, pad):
    x = inputs((2, 2, 4, 5))
    module = Pad2D(pad, mode, value=1.5)
    top, bottom, left, right = (module.top, module.bottom, module.left, module.right)
    extra = {"constant_values": 1.5} if mode == "constant" else {}
    expected = numpy.pad(toHost(x), ((0, 0), (0, 0), (top, bottom), (left, right)), mode=numpyMode, **extra)
    numpy.testing.assert_array_equal(toHost(module(x)), expected)
    checkGradients(module, x)


def test_pad_copies_non_finite_values_only_where_they_are_read():
    x = numpy.arange(9.0).reshape(1, 1, 3, 3)
    x[0, 0, 1, 1] = numpy.inf
    out = toHost(Pad2D(1, "reflect")(toDevice(x)))
    assert numpy.isinf(out).sum() == 9 and not numpy.isnan(out).any()


# Upsample2D

def bilinearOracle(x, sy, sx):
    """PyTorch's align_corners=False formula, one output pixel at a time."""
    height, width = x.shape[2:]
    out = numpy.zeros(x.shape[:2] + (height * sy, width * sx))

    def source(index, scale, side):
        position = max((index + 0.5) / scale - 0.5, 0.0)
        low = int(numpy.floor(position))
        return low, min(low + 1, side - 1), position - low

    for i, j in numpy.ndindex(out.shape[2:]):
        y0, y1, a = source(i, sy, height)
        x0, x1, b = source(j, sx, width)
        out[:, :, i, j] = ((1 - a) * ((1 - b) * x[:, :, y0, x0] + b * x[:, :, y0, x1])
                           + a * ((1 - b) * x[:, :, y1, x0] + b * x[:, :, y1, x1]))
    return out


@pytest.mark.parametrize("scale", [2, (3, 1), (1, 2)])
def test_upsample_matches_oracles_and_numerical_gradients(scale):
    x = inputs((2, 2, 3, 4))
    sy, sx = (scale, scale) if isinstance(scale, int) else scale
    nearest = Upsample2D(scale, "nearest")
    numpy.testing.assert_array_equal(toHost(nearest(x)), toHost(x).repeat(sy, axis=2).repeat(sx, axis=3))
    checkGradients(nearest, x)
    bilinear = Upsample2D(scale, "bilinear")
    numpy.testing.assert_allclose(toHost(bilinear(x)), bilinearOracle(toHost(x), sy, sx), rtol=1e-12, atol=1e-12)
    checkGradients(bilinear, x)


# GlobalAvgPool2D

def test_global_average_pooling_is_the_mean_of_each_map():
    x = inputs((2, 3, 4, 5))
    pool = GlobalAvgPool2D()
    numpy.testing.assert_allclose(toHost(pool(x)), toHost(x).mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    checkGradients(pool, x)


# GroupNorm, InstanceNorm2D

def groupNormOracle(x, groups, scale, bias, epsilon):
    grouped = x.reshape(x.shape[0], groups, -1)
    xhat = (grouped - grouped.mean(axis=2, keepdims=True)) / numpy.sqrt(grouped.var(axis=2, keepdims=True) + epsilon)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return xhat.reshape(x.shape) * scale.reshape(shape) + bias.reshape(shape)


@pytest.mark.parametrize("module, shape", [
    (GroupNorm(2, 4, dtype=F64), (3, 4, 3, 2)), (GroupNorm(1, 3, dtype=F64), (2, 3, 5)),
    (GroupNorm(3, 3, epsilon=0.1, dtype=F64), (2, 3)), (InstanceNorm2D(3, dtype=F64), (2, 3, 2, 3)),
], ids=["groups of 2 maps", "layer-like on (N, C, L)", "one value per group", "instance"])
def test_group_norm_matches_the_formula_and_numerical_gradients(module, shape):
    randomParams(module)
    x = inputs(shape)
    expected = groupNormOracle(toHost(x), module.groups, toHost(module.scale), toHost(module.bias), module.epsilon)
    numpy.testing.assert_allclose(toHost(module(x)), expected, rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(toHost(module.evalMode()(x)), expected, rtol=1e-10, atol=1e-12)
    checkGradients(module.trainMode(), x)


def test_group_norm_of_half_data_sums_in_float32():
    x = numpy.full((1, 2, 200, 200), 300.0, numpy.float16)
    x[0, :, 0, 0] = 310.0  # sums past 65504: in float16 the mean would be inf
    out = toHost(GroupNorm(1, 2, dtype=numpy.float16)(toDevice(x)))
    assert numpy.isfinite(out).all() and out[0, 0, 0, 0] > 100


# bad input

def test_bad_construction_and_input_name_what_was_expected():
    with pytest.raises(ModuleError, match="size must be an int"):
        Conv1D(2, 2, (3, 3))
    with pytest.raises(ModuleError, match=r"3 dimensions"):
        Conv1D(2, 2, 3)(toDevice(numpy.zeros((1, 2, 4, 4), numpy.float32)))
    with pytest.raises(ModuleError, match=r"outpad \(2, 2\) must be >= 0 and smaller than the stride"):
        Deconv2D(2, 2, 3, stride=2, outpad=2)
    with pytest.raises(ModuleError, match="multiples of groups"):
        Deconv2D(3, 2, 3, groups=2)
    with pytest.raises(ModuleError, match="4 maps"):
        Deconv2D(4, 2, 3)(toDevice(numpy.zeros((1, 3, 4, 4), numpy.float32)))
    with pytest.raises(ModuleError, match="mode must be one of"):
        Pad2D(1, "circular")
    with pytest.raises(ModuleError, match="pad must be an int, a pair"):
        Pad2D((1, 2, 3))
    with pytest.raises(ModuleError, match=r"must be smaller than the input's sides \(2, 5\)"):
        Pad2D(2, "reflect")(toDevice(numpy.zeros((1, 1, 2, 5), numpy.float32)))
    with pytest.raises(ModuleError, match="scale must be >= 1"):
        Upsample2D(0)
    with pytest.raises(ModuleError, match="mode must be one of"):
        Upsample2D(2, "bicubic")
    with pytest.raises(ModuleError, match="positive multiple of groups"):
        GroupNorm(3, 4)
    # an epsilon of NaN made every output NaN, a group count of 1.5 failed at the first call, a string or None
    # raised TypeError: each is refused as BatchNorm refuses it
    for args, kwargs, message in [((1, 4), {"epsilon": numpy.nan}, "epsilon must be a finite real number"),
                                  ((1, 4), {"epsilon": 0.0}, r"epsilon must lie in \(0"),
                                  ((1.5, 3), {}, "groups must be an integer"), ((True, 3), {}, "groups must be"),
                                  ((1, None), {}, "maps must be an integer"), ((1, 4), {"epsilon": "a"}, "epsilon")]:
        with pytest.raises(ModuleError, match=message):
            GroupNorm(*args, **kwargs)
    with pytest.raises(ModuleError, match="InstanceNorm2D epsilon must be a finite real number"):
        InstanceNorm2D(3, epsilon=numpy.nan)
    with pytest.raises(ModuleError, match=r"shape \(batch, 4, \.\.\.\)"):
        GroupNorm(2, 4)(toDevice(numpy.zeros((2, 3, 4), numpy.float32)))
    with pytest.raises(ModuleError, match="4 dimensions"):
        InstanceNorm2D(3)(toDevice(numpy.zeros((2, 3, 4), numpy.float32)))
    with pytest.raises(ModuleError, match="floating dtype"):
        GlobalAvgPool2D()(toDevice(numpy.zeros((1, 1, 2, 2), numpy.int32)))


def test_conv2d_takes_its_columns_image_by_image_on_the_cpu_only():
    """On the CPU, where the batch of products runs on minidl's threads, col is never stored whole; on a device
    (a GPU, the simulated one) it is, for cuBLAS's one launch a product (``minidl.nn.columnproducts``)."""
    conv = Conv2D(16, 16, 3, pad=1)
    conv(toDevice(numpy.ones((4, 16, 32, 32), numpy.float32)))
    imageByImage = not isGpu and columnsImageByImage(numpy.float32, 4 * conv.W.size * 32 * 32)
    assert (conv.col is None) == imageByImage
    if isGpu:
        assert not columnsImageByImage(numpy.float32, 2 ** 40)
