"""The 1-D and 3-D family (Conv3D, Deconv1D, Deconv3D, MaxPool1D/3D, AvgPool1D/3D, BatchNorm1D/3D) and
MaxUnpool2D, KMaxPool: forward against float64 oracles written with loops or textbook formulas, float64
numerical gradients, PyTorch's layers forward and backward where torch is installed (weights carried over as
they are), special values, and bad input."""

import itertools

import numpy
import pytest

from minidl import ModuleError
from minidl.backend import toDevice, toHost
from minidl.nn import (
    AvgPool1D,
    AvgPool3D,
    BatchNorm1D,
    BatchNorm3D,
    Conv3D,
    Deconv1D,
    Deconv3D,
    KMaxPool,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    MaxUnpool2D,
)
from minidl.testing import checkGradients
from tests.nn.test_conv_family import directDeconv, inputs, randomParams, torchOrSkip

F64 = numpy.float64


def outSide(side, size, stride, pad, dilation=1, ceil=False):
    room = side + 2 * pad - dilation * (size - 1) - 1
    count = (-(-room // stride) if ceil else room // stride) + 1
    return count - 1 if ceil and (count - 1) * stride >= side + pad else count


# Conv3D, Deconv3D

def directConv3d(x, weights, bias, stride, pad, dilation, groups):
    """y[n, o, z, y, x] = b[o] + Σ W[o, c, kz, ky, kx] xpad[n, group(o) c, z s + kz d, ...], by loops."""
    outmaps, groupMaps, *size = weights.shape
    padded = numpy.pad(x, ((0, 0), (0, 0), *((p, p) for p in pad)))
    outShape = [(padded.shape[2 + a] - dilation[a] * (size[a] - 1) - 1) // stride[a] + 1 for a in range(3)]
    out = numpy.zeros((x.shape[0], outmaps, *outShape))
    for n, o, z, y, w in numpy.ndindex(out.shape):
        first = o // (outmaps // groups) * groupMaps
        patch = padded[n, first:first + groupMaps,
                       z * stride[0]:z * stride[0] + dilation[0] * (size[0] - 1) + 1:dilation[0],
                       y * stride[1]:y * stride[1] + dilation[1] * (size[1] - 1) + 1:dilation[1],
                       w * stride[2]:w * stride[2] + dilation[2] * (size[2] - 1) + 1:dilation[2]]
        out[n, o, z, y, w] = (patch * weights[o]).sum() + bias[o]
    return out


def directDeconv3d(x, weights, bias, stride, pad, outpad, dilation, groups):
    """Every input voxel scatters W[c, o] times itself onto the output window it reaches, by loops."""
    inmaps, groupOut, *size = weights.shape
    outShape = [(x.shape[2 + a] - 1) * stride[a] - 2 * pad[a] + dilation[a] * (size[a] - 1) + outpad[a] + 1
                for a in range(3)]
    out = numpy.zeros((x.shape[0], groupOut * groups, *outShape)) + bias.reshape(1, -1, 1, 1, 1)
    for n, c, i, j, k in numpy.ndindex(x.shape):
        for o, kz, ky, kx in numpy.ndindex(groupOut, *size):
            z, y, w = (index * stride[a] - pad[a] + tap * dilation[a]
                       for a, (index, tap) in enumerate(((i, kz), (j, ky), (k, kx))))
            if 0 <= z < outShape[0] and 0 <= y < outShape[1] and 0 <= w < outShape[2]:
                out[n, c // (inmaps // groups) * groupOut + o, z, y, w] += weights[c, o, kz, ky, kx] * x[n, c, i, j, k]
    return out


CONV3D_CASES = [  # inmaps, outmaps, size, stride, pad, dilation, groups
    (2, 3, 3, 1, 1, 1, 1), (2, 2, (2, 1, 3), (2, 1, 2), (0, 1, 1), 1, 1), (4, 2, 2, 1, (1, 0, 0), (2, 1, 1), 2),
    (3, 3, (1, 2, 2), (1, 2, 1), 0, (1, 1, 2), 3),
]


@pytest.mark.parametrize("inmaps, outmaps, size, stride, pad, dilation, groups", CONV3D_CASES)
def test_conv3d_matches_loops_and_numerical_gradients(inmaps, outmaps, size, stride, pad, dilation, groups):
    conv = randomParams(Conv3D(inmaps, outmaps, size, stride, pad, dilation, groups, dtype=F64))
    window = conv.window
    assert conv.W.shape == (outmaps, inmaps // groups, *window.size)
    x = inputs((2, inmaps, 4, 3, 5))
    expected = directConv3d(toHost(x), toHost(conv.W), toHost(conv.b), window.stride, window.pad, window.dilation,
                            groups)
    numpy.testing.assert_allclose(toHost(conv(x)), expected, rtol=1e-12, atol=1e-12)
    checkGradients(conv, x)


DECONV3D_CASES = [  # inmaps, outmaps, size, stride, pad, outpad, dilation, groups
    (2, 3, 2, 1, 0, 0, 1, 1), (2, 2, 3, 2, 1, 1, 1, 1),
    (4, 2, (2, 1, 3), (2, 1, 2), (0, 0, 1), (1, 0, 0), (1, 1, 2), 2),
]


@pytest.mark.parametrize("inmaps, outmaps, size, stride, pad, outpad, dilation, groups", DECONV3D_CASES)
def test_deconv3d_matches_loops_and_numerical_gradients(inmaps, outmaps, size, stride, pad, outpad, dilation, groups):
    deconv = randomParams(Deconv3D(inmaps, outmaps, size, stride, pad, outpad, dilation, groups, dtype=F64))
    window = deconv.window
    assert deconv.W.shape == (inmaps, outmaps // groups, *window.size)
    x = inputs((2, inmaps, 2, 3, 2))
    expected = directDeconv3d(toHost(x), toHost(deconv.W), toHost(deconv.b), window.stride, window.pad,
                              deconv.outpad, window.dilation, groups)
    numpy.testing.assert_allclose(toHost(deconv(x)), expected, rtol=1e-12, atol=1e-12)
    checkGradients(deconv, x)


# Deconv1D

@pytest.mark.parametrize("inmaps, outmaps, size, stride, pad, outpad, dilation, groups", [
    (2, 3, 3, 1, 0, 0, 1, 1), (2, 3, 3, 2, 1, 1, 1, 1), (4, 2, 2, 3, 1, 2, 2, 2),
])
def test_deconv1d_matches_loops_and_numerical_gradients(inmaps, outmaps, size, stride, pad, outpad, dilation, groups):
    deconv = randomParams(Deconv1D(inmaps, outmaps, size, stride, pad, outpad, dilation, groups, dtype=F64))
    assert deconv.W.shape == (inmaps, outmaps // groups, size)
    x = inputs((2, inmaps, 5))
    expected = directDeconv(toHost(x)[:, :, None, :], toHost(deconv.W)[:, :, None, :], toHost(deconv.b), (1, stride),
                            (0, pad), (0, outpad), (1, dilation), groups)[:, :, 0, :]
    numpy.testing.assert_allclose(toHost(deconv(x)), expected, rtol=1e-12, atol=1e-12)
    checkGradients(deconv, x)


# pools

def poolOracle(x, size, stride, pad, ceil, reduce, padValue):
    """Each window of x (N, C, *spatial) reduced by ``reduce`` over its taps (padValue outside the input), by
    loops; for the mean in ceil mode the divisor is the taps inside the padded input, as PyTorch's."""
    spatial = x.shape[2:]
    outShape = [outSide(side, k, s, p, ceil=ceil) for side, k, s, p in zip(spatial, size, stride, pad)]
    out = numpy.zeros(x.shape[:2] + tuple(outShape))
    for position in numpy.ndindex(*outShape):
        starts = [o * s - p for o, s, p in zip(position, stride, pad)]
        values, inPadded = [], 0
        for taps in numpy.ndindex(*size):
            voxel = [start + t for start, t in zip(starts, taps)]
            inside = all(0 <= v < side for v, side in zip(voxel, spatial))
            inPadded += all(-p <= v < side + p for v, side, p in zip(voxel, spatial, pad))
            values.append(x[(..., *voxel)] if inside else numpy.full(x.shape[:2], padValue))
        out[(..., *position)] = reduce(numpy.stack(values), inPadded)
    return out


def maxOf(values, _count):
    return values.max(axis=0)


def meanOf(values, count):
    return values.sum(axis=0) / count


POOL_CASES = [  # size, stride, pad, ceilMode
    (2, 2, 0, False), (3, 2, 1, False), (3, 2, 1, True), (2, 1, 1, False), ((3, 2, 1), (2, 1, 1), (1, 1, 0), True),
]


@pytest.mark.parametrize("size, stride, pad, ceilMode", POOL_CASES)
@pytest.mark.parametrize("kind, reduce, padValue", [(MaxPool3D, maxOf, -numpy.inf), (AvgPool3D, meanOf, 0.0)],
                         ids=["max", "avg"])
def test_pool3d_matches_loops_and_numerical_gradients(kind, reduce, padValue, size, stride, pad, ceilMode):
    pool = kind(size, stride, pad, ceilMode)
    window = pool.window
    x = inputs((2, 2, 5, 4, 5))
    expected = poolOracle(toHost(x), window.size, window.stride, window.pad, ceilMode, reduce, padValue)
    numpy.testing.assert_allclose(toHost(pool(x)), expected, rtol=1e-12, atol=1e-12)
    checkGradients(pool, x)


@pytest.mark.parametrize("size, stride, pad, ceilMode", [case for case in POOL_CASES if isinstance(case[0], int)])
@pytest.mark.parametrize("kind, reduce, padValue", [(MaxPool1D, maxOf, -numpy.inf), (AvgPool1D, meanOf, 0.0)],
                         ids=["max", "avg"])
def test_pool1d_matches_loops_and_numerical_gradients(kind, reduce, padValue, size, stride, pad, ceilMode):
    pool = kind(size, stride, pad, ceilMode)
    x = inputs((2, 3, 9))
    expected = poolOracle(toHost(x), (size,), (stride,), (pad,), ceilMode, reduce, padValue)
    numpy.testing.assert_allclose(toHost(pool(x)), expected, rtol=1e-12, atol=1e-12)
    checkGradients(pool, x)


def test_max_pools_let_nan_win_and_give_the_gradient_to_the_first_maximum():
    x = numpy.zeros((1, 1, 2, 2, 2))
    x[0, 0, 1, 0, 1] = 1.0
    x[0, 0, 1, 1, 0] = 1.0  # a tie: the first in (z, y, x) order wins
    pool = MaxPool3D(2)
    out = pool(toDevice(x))
    assert toHost(out).item() == 1.0
    grad = toHost(pool.backward(toDevice(numpy.full((1, 1, 1, 1, 1), 3.0))))
    assert grad[0, 0, 1, 0, 1] == 3.0 and grad.sum() == 3.0
    x[0, 0, 1, 1, 1] = numpy.nan
    assert numpy.isnan(toHost(pool(toDevice(x)))).all()
    line = toDevice(numpy.array([[[numpy.inf, -numpy.inf, numpy.nan, 0.0, -0.0, 0.0]]]))
    pool1d = MaxPool1D(2)
    numpy.testing.assert_array_equal(toHost(pool1d(line)), [[[numpy.inf, numpy.nan, 0.0]]])
    grad = toHost(pool1d.backward(toDevice(numpy.array([[[1.0, 2.0, 4.0]]]))))
    numpy.testing.assert_array_equal(grad, [[[1.0, 0.0, 2.0, 0.0, 4.0, 0.0]]])
    assert numpy.isnan(toHost(AvgPool3D(2)(toDevice(x)))).all()


# BatchNorm1D, BatchNorm3D

@pytest.mark.parametrize("kind, shape", [(BatchNorm1D, (3, 4, 5)), (BatchNorm3D, (2, 3, 2, 3, 2))])
def test_batchnorm_1d_3d_match_the_formula_and_numerical_gradients(kind, shape):
    norm = randomParams(kind(shape[1], epsilon=1e-3, dtype=F64))
    norm.getBufferTable()["mean"][...] = toDevice(numpy.linspace(-1, 1, shape[1]))
    x = inputs(shape)
    host = toHost(x)
    axes = (0, *range(2, len(shape)))
    perMap = (1, -1) + (1,) * (len(shape) - 2)
    scale, bias = toHost(norm.scale).reshape(perMap), toHost(norm.bias).reshape(perMap)
    running = toHost(norm.getBufferTable()["mean"]).copy()
    expected = (host - host.mean(axis=axes, keepdims=True)) / numpy.sqrt(host.var(axis=axes, keepdims=True) + 1e-3)
    numpy.testing.assert_allclose(toHost(norm(x)), expected * scale + bias, rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(toHost(norm.getBufferTable()["mean"]), 0.9 * running + 0.1 * host.mean(axis=axes),
                                  rtol=1e-12)
    checkGradients(norm, x)
    norm.evalMode()
    meanNow, varNow = (toHost(norm.getBufferTable()[name]).reshape(perMap) for name in ("mean", "var"))
    numpy.testing.assert_allclose(toHost(norm(x)), (host - meanNow) / numpy.sqrt(varNow + 1e-3) * scale + bias,
                                  rtol=1e-10, atol=1e-12)
    checkGradients(norm, x)


# MaxUnpool2D

def test_max_unpool_puts_values_where_the_maxima_were_and_matches_numerical_gradients():
    pool = MaxPool2D(3, 2, 1)
    x = inputs((2, 2, 5, 6))
    pooled = pool(x)
    unpool = MaxUnpool2D(pool)
    values = inputs(pooled.shape, seed=3)
    out = toHost(unpool(values))
    expected = numpy.zeros(x.shape)  # by loops: each window's value added at its maximum's pixel
    host = numpy.pad(toHost(x), ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-numpy.inf)
    for n, c, oy, ox in numpy.ndindex(pooled.shape):
        patch = host[n, c, 2 * oy:2 * oy + 3, 2 * ox:2 * ox + 3]
        ky, kx = numpy.unravel_index(patch.argmax(), patch.shape)
        expected[n, c, 2 * oy + ky - 1, 2 * ox + kx - 1] += toHost(values)[n, c, oy, ox]
    numpy.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    checkGradients(unpool, values)


# KMaxPool

def kmaxOracle(x, k, axis):
    """The k largest (NaN largest, the earlier of equals first) along axis, in their order, by sorting lists."""
    last = numpy.moveaxis(x, axis, -1)
    out = numpy.empty(last.shape[:-1] + (k,))
    for index in numpy.ndindex(last.shape[:-1]):
        row = last[index]
        keys = [(1 if numpy.isnan(v) else 0, 0.0 if numpy.isnan(v) else v, -i) for i, v in enumerate(row)]
        chosen = sorted(sorted(range(len(row)), key=lambda i: keys[i], reverse=True)[:k])
        out[index] = row[chosen]
    return numpy.moveaxis(out, -1, axis)


@pytest.mark.parametrize("k, axis", [(2, -1), (3, 1), (1, 0), (4, 2)])
def test_kmax_pool_matches_the_sorted_oracle_and_numerical_gradients(k, axis):
    x = inputs((3, 4, 5))
    pool = KMaxPool(k, axis)
    numpy.testing.assert_array_equal(toHost(pool(x)), kmaxOracle(toHost(x), k, axis))
    checkGradients(pool, x)


def test_kmax_pool_of_special_values_and_ties():
    row = numpy.array([[1.0, numpy.nan, -numpy.inf, 2.0, 2.0, -0.0, 0.0, numpy.inf, 1.0, numpy.nan]])
    for k in range(1, row.shape[1] + 1):
        pool = KMaxPool(k)
        out = toHost(pool(toDevice(row)))
        expected = kmaxOracle(row, k, -1)
        numpy.testing.assert_array_equal(out, expected)
        assert (numpy.signbit(out) == numpy.signbit(expected)).all()  # -0.0 and 0.0 are equal: the earlier wins
        grad = toHost(pool.backward(toDevice(numpy.arange(1.0, k + 1)[None])))
        assert sorted(grad[grad != 0]) == list(range(1, k + 1)) and (grad != 0).sum() == k
    rows = numpy.random.default_rng(2).integers(-2, 3, (4, 200)) * numpy.where(numpy.arange(200) % 3, 1.0, -1.0)
    rows[:, ::37] = numpy.nan  # long rows of few values, zeros of both signs: a sort that is not stable fails
    for k in (1, 50, 150):
        out, expected = toHost(KMaxPool(k)(toDevice(rows))), kmaxOracle(rows, k, -1)
        numpy.testing.assert_array_equal(out, expected)
        assert (numpy.signbit(out) == numpy.signbit(expected)).all()
    pool = KMaxPool(3)
    pool(toDevice(numpy.array([[0.0, 5.0, 5.0, 1.0, 5.0]])))
    numpy.testing.assert_array_equal(toHost(pool.backward(toDevice(numpy.array([[1.0, 2.0, 3.0]])))),
                                     [[0.0, 1.0, 2.0, 0.0, 3.0]])


# PyTorch, forward and backward

def torchRun(torch, function, x, grad, *params):
    """function's output and the gradients of x and params for output gradient ``grad``, in float64."""
    leaves = [torch.from_numpy(numpy.ascontiguousarray(array)).requires_grad_() for array in (x, *params)]
    out = function(*leaves)
    out.backward(torch.from_numpy(grad))
    return out.detach().numpy(), [leaf.grad.numpy() for leaf in leaves]


def assertLikeTorch(module, x, theirs, params=()):
    """module's output and its input and parameter gradients equal torch's (``theirs``: output, gradients)."""
    out = module(toDevice(x))
    numpy.testing.assert_allclose(toHost(out), theirs[0], rtol=1e-10, atol=1e-12)
    for var in module.getVarTable().values():
        var.grad[...] = 0
    grad = numpy.random.default_rng(9).standard_normal(theirs[0].shape)
    numpy.testing.assert_allclose(toHost(module.backward(toDevice(grad))), theirs[1][0], rtol=1e-10, atol=1e-12)
    for name, theirsGrad in zip(params, theirs[1][1:]):
        numpy.testing.assert_allclose(toHost(module.vars[name].grad), theirsGrad, rtol=1e-10, atol=1e-12)
    return grad


def outputGrad(shape):
    return numpy.random.default_rng(9).standard_normal(shape)


def test_layers_match_pytorch_forward_and_backward():
    torch = torchOrSkip()
    functional = torch.nn.functional
    rng = numpy.random.default_rng(4)
    vol, line = rng.standard_normal((2, 4, 5, 4, 6)), rng.standard_normal((2, 4, 9))

    def compare(module, x, function, params=(), shape=None):  # shape: the output's, for modules with a state
        shape = module(toDevice(x)).shape if shape is None else shape
        theirs = torchRun(torch, function, x, outputGrad(shape), *(toHost(module.vars[p].data) for p in params))
        assertLikeTorch(module, x, theirs, params)

    conv = randomParams(Conv3D(4, 6, (3, 2, 3), stride=(2, 1, 2), pad=(1, 0, 1), dilation=(1, 2, 1), groups=2,
                               dtype=F64))
    compare(conv, vol, lambda x, w, b: functional.conv3d(x, w, b, (2, 1, 2), (1, 0, 1), (1, 2, 1), 2), ("W", "b"))
    deconv = randomParams(Deconv3D(4, 6, 3, stride=2, pad=1, outpad=(1, 0, 1), groups=2, dtype=F64))
    compare(deconv, vol, lambda x, w, b: functional.conv_transpose3d(x, w, b, 2, 1, (1, 0, 1), 2), ("W", "b"))
    deconv1 = randomParams(Deconv1D(4, 6, 3, stride=2, pad=1, outpad=1, dilation=2, groups=2, dtype=F64))
    compare(deconv1, line, lambda x, w, b: functional.conv_transpose1d(x, w, b, 2, 1, 1, 2, 2), ("W", "b"))
    for ceil in (False, True):
        compare(MaxPool3D(3, 2, 1, ceil), vol, lambda x, ceil=ceil: functional.max_pool3d(x, 3, 2, 1, ceil_mode=ceil))
        compare(AvgPool3D(3, 2, 1, ceil), vol, lambda x, ceil=ceil: functional.avg_pool3d(x, 3, 2, 1, ceil_mode=ceil))
        compare(MaxPool1D(3, 2, 1, ceil), line, lambda x, ceil=ceil: functional.max_pool1d(x, 3, 2, 1, ceil_mode=ceil))
        compare(AvgPool1D(3, 2, 1, ceil), line, lambda x, ceil=ceil: functional.avg_pool1d(x, 3, 2, 1, ceil_mode=ceil))
    for norm, x in ((randomParams(BatchNorm1D(4, dtype=F64)), line), (randomParams(BatchNorm3D(4, dtype=F64)), vol)):
        mean, var = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
        compare(norm, x, lambda x, w, b, mean=mean, var=var: functional.batch_norm(x, mean, var, w, b, True, 0.1, 1e-5),
                ("scale", "bias"), x.shape)
        for name, theirs in (("mean", mean), ("var", var)):  # torch updates its running statistics in place
            numpy.testing.assert_allclose(toHost(norm.getBufferTable()[name]), theirs.numpy(), rtol=1e-10, atol=1e-12)

    pool = MaxPool2D(2, 2)
    image = rng.standard_normal((2, 3, 6, 4))
    pooled = toHost(pool(toDevice(image)))
    indices = functional.max_pool2d(torch.from_numpy(image), 2, 2, return_indices=True)[1]
    compare(MaxUnpool2D(pool), pooled, lambda x: functional.max_unpool2d(x, indices, 2, 2, output_size=(6, 4)))

    kmax = KMaxPool(3, axis=1)

    def topk(x):
        positions = torch.sort(torch.topk(x, 3, dim=1).indices, dim=1).values
        return torch.gather(x, 1, positions)

    compare(kmax, vol[:, :, 0, 0], topk)


# bad input

def test_bad_construction_and_input_name_what_was_expected():
    volume = toDevice(numpy.zeros((1, 2, 3, 3, 3), numpy.float32))
    with pytest.raises(ModuleError, match="an int or a triple"):
        Conv3D(2, 2, (3, 3))
    with pytest.raises(ModuleError, match="multiples of groups"):
        Conv3D(3, 2, 3, groups=2)
    with pytest.raises(ModuleError, match="5 dimensions"):
        Conv3D(2, 2, 3)(toDevice(numpy.zeros((1, 2, 3, 3), numpy.float32)))
    with pytest.raises(ModuleError, match="must have 4 maps"):
        Conv3D(4, 2, 3)(volume)
    with pytest.raises(ModuleError, match=r"larger than the padded input \(3, 3, 3\)"):
        Conv3D(2, 2, (4, 1, 1))(volume)
    with pytest.raises(ModuleError, match=r"outpad \(2, 0, 0\) must be >= 0 and smaller than the stride"):
        Deconv3D(2, 2, 3, stride=2, outpad=(2, 0, 0))
    with pytest.raises(ModuleError, match="Deconv1D size must be an integer"):
        Deconv1D(2, 2, (3, 3))
    with pytest.raises(ModuleError, match="3 dimensions"):
        Deconv1D(2, 2, 3)(volume)
    with pytest.raises(ModuleError, match="must be at most half the window"):
        MaxPool3D(2, pad=(0, 2, 0))
    with pytest.raises(ModuleError, match="floating dtype"):
        AvgPool3D(2)(toDevice(numpy.zeros((1, 1, 2, 2, 2), numpy.int32)))
    with pytest.raises(ModuleError, match="MaxPool1D size must be an integer"):
        MaxPool1D((2, 2))
    with pytest.raises(ModuleError, match="3 dimensions"):
        AvgPool1D(2)(volume)
    with pytest.raises(ModuleError, match="5 dimensions"):
        BatchNorm3D(2)(toDevice(numpy.zeros((2, 2, 3), numpy.float32)))
    with pytest.raises(ModuleError, match="maxpool must be a MaxPool2D"):
        MaxUnpool2D(MaxPool1D(2))
    pool = MaxPool2D(2)
    with pytest.raises(ModuleError, match="has not run forward"):
        MaxUnpool2D(pool)(toDevice(numpy.zeros((1, 1, 2, 2), numpy.float32)))
    pool(toDevice(numpy.zeros((1, 1, 4, 4), numpy.float32)))
    with pytest.raises(ModuleError, match=r"shape of its MaxPool2D's output, \(1, 1, 2, 2\)"):
        MaxUnpool2D(pool)(toDevice(numpy.zeros((1, 1, 2, 3), numpy.float32)))
    with pytest.raises(ModuleError, match="KMaxPool k must be an integer >= 1"):
        KMaxPool(0)
    with pytest.raises(ModuleError, match="at least k=4 values"):
        KMaxPool(4)(toDevice(numpy.zeros((2, 3), numpy.float32)))
    with pytest.raises(ModuleError, match="axis 2 is outside"):
        KMaxPool(1, axis=2)(toDevice(numpy.zeros((2, 3), numpy.float32)))


def test_every_geometry_of_a_small_volume_round_trips_through_vol2col_and_col2vol():
    """col2vol is vol2col's adjoint: <vol2col(x), c> = <x, col2vol(c)> for every window of a 3x4x3 volume."""
    from minidl.nn.vol2col import Window3D, col2vol, vol2col

    rng = numpy.random.default_rng(5)
    x = rng.standard_normal((1, 2, 3, 4, 3))
    for size, stride, pad, dilation, ceil in itertools.product([1, 2, 3], [1, 2], [0, 1], [1, 2], [False, True]):
        window = Window3D((size, 2, 1), (stride, 1, 2), (pad, 0, pad), (dilation, 1, 1), ceil)
        try:
            window.outShape(3, 4, 3, "test")
        except ModuleError:
            continue
        col = toHost(vol2col(toDevice(x), window))
        other = rng.standard_normal(col.shape)
        back = toHost(col2vol(toDevice(other), window, 3, 4, 3))
        numpy.testing.assert_allclose((col * other).sum(), (x * back).sum(), rtol=1e-12)


def test_the_gpu_geometries_give_the_numbers_of_the_cpu_ones(monkeypatch):
    """With the kernels' GPU geometry (a value per element for im2col and col2im, a row for max pooling and
    depthwise convolutions, a pixel per element for max unpooling, BatchNorm's Reductions and a value per element,
    GroupNorm's PARTIAL_SPAN values per element for its sums, the 1-D layers' length as rows; Conv2D's products per
    image, ∂x by col2im and ∂W summed by a reduction), run on this machine's paths, every layer of the family gives
    what the CPU geometry gives, forward and backward."""
    from minidl.nn import Conv2D, GroupNorm, batchnorm, conv2d, depthwise, im2col, maxpool2d
    from minidl.nn import line as orientation

    def run(make, x):
        module = make()
        out = module(toDevice(x))
        grad = numpy.random.default_rng(1).standard_normal(out.shape)
        ingrad = module.backward(toDevice(grad))
        return [toHost(out), toHost(ingrad)] + [toHost(var.grad) for var in module.getVarTable().values()]

    rng = numpy.random.default_rng(7)
    image, line, vol = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((2, 4, 11)), \
        rng.standard_normal((2, 2, 4, 5, 6))

    def unpooled():
        pool = MaxPool2D(3, 2, 1)
        pool(toDevice(image))
        return MaxUnpool2D(pool)

    cases = [
        (lambda: randomParams(Conv3D(2, 3, 3, stride=(1, 2, 1), pad=1, dtype=F64)), vol),
        (lambda: randomParams(Deconv3D(2, 3, 2, stride=2, outpad=1, dtype=F64)), vol),
        (lambda: randomParams(Deconv1D(4, 2, 3, stride=2, pad=1, dtype=F64)), line),
        (lambda: MaxPool1D(3, 2, 1), line), (lambda: AvgPool1D(3, 1, 1), line),
        (lambda: MaxPool3D(3, 2, 1, True), vol), (lambda: AvgPool3D(2, 1), vol),
        (lambda: MaxPool2D(3, 1, 1), image), (unpooled, rng.standard_normal((2, 3, 4, 3))),
        (lambda: randomParams(BatchNorm3D(2, dtype=F64)), rng.standard_normal((3, 2, 7, 9, 11))),
        (lambda: randomParams(BatchNorm1D(4, dtype=F64)), line),
        (lambda: randomParams(GroupNorm(2, 4, dtype=F64)), line),
        (lambda: randomParams(Conv2D(3, 4, 3, pad=1, dtype=F64)), image),
        (lambda: randomParams(Conv2D(3, 2, 3, stride=2, pad=1, dtype=F64)), image),
        (lambda: randomParams(Conv2D(3, 6, 3, pad=1, groups=3, dtype=F64)), image),
        (lambda: randomParams(Conv2D(3, 3, (3, 1), pad=(1, 0), groups=3, dtype=F64)), image),
    ]
    cpu = [run(make, x) for make, x in cases]
    for module in (maxpool2d, im2col, batchnorm, orientation, conv2d, depthwise):  # the 1-D layers made anew take
        monkeypatch.setattr(module, "isGpu", True)
    assert MaxPool1D(2).window.size == (2, 1) and Deconv1D(2, 2, 3).W.shape == (2, 2, 3)
    for (make, x), arrays in zip(cases, cpu):
        for gpuArray, array in zip(run(make, x), arrays, strict=True):
            numpy.testing.assert_allclose(gpuArray, array, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, shape", [
    (lambda dtype: Conv3D(2, 4, 3, pad=1, dtype=dtype), (2, 2, 3, 4, 5)),
    (lambda dtype: Deconv3D(2, 4, 3, stride=2, dtype=dtype), (2, 2, 3, 2, 3)),
    (lambda dtype: Deconv1D(2, 4, 3, stride=2, dtype=dtype), (2, 2, 6)),
    (lambda dtype: BatchNorm3D(2, dtype=dtype), (2, 2, 3, 4, 5)),
    (lambda dtype: BatchNorm1D(2, dtype=dtype), (3, 2, 5)),
], ids=["Conv3D", "Deconv3D", "Deconv1D", "BatchNorm3D", "BatchNorm1D"])
def test_float32_layers_compute_what_float64_ones_do(make, shape):
    wide, narrow = randomParams(make(F64)), make(numpy.float32)
    for name, var in wide.getVarTable().items():
        narrow.vars[name].set(toHost(var.data).astype(numpy.float32))
    x = numpy.random.default_rng(3).standard_normal(shape)
    out = toHost(narrow(toDevice(x.astype(numpy.float32))))
    assert out.dtype == numpy.float32
    numpy.testing.assert_allclose(out, toHost(wide(toDevice(x))), rtol=1e-4, atol=1e-5)
