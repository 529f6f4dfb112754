"""The kernels of BatchNorm (partial sums, forward, backward, parameter gradients; GroupNorm's scale and
shift), Dropout (mask) and SoftMax (gradient): CPU path
against float64 oracles, other paths against the CPU path."""

import numpy
import pytest
from hypothesis import strategies as st

from minidl.nn.batchnorm import backwardKer, forwardKer, paramGradsKer, partialsKer, scaleShiftKer
from minidl.nn.dropout import dropoutKer
from minidl.nn.groupnorm import gradKer as groupNormGradKer
from minidl.nn.softmax import softmaxGradKer
from minidl.testing import arrays, checkKernel, floatDtypes
from tests import philoxoracle


@st.composite
def mapShapes(draw):
    """(N, C) or (N, C, H, W), and (C, spatial)."""
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 5)))
    if draw(st.booleans()):
        shape += (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    return shape, shape[1], int(numpy.prod(shape[2:]))


def perMap(values, shape):
    return values.reshape((1, -1) + (1,) * (len(shape) - 2))


@st.composite
def scaleShiftCases(draw):
    dtype, (shape, maps, spatial) = draw(floatDtypes()), draw(mapShapes())
    x = draw(arrays(dtype, shape))
    mean, scale, bias = (draw(arrays(dtype, (maps,))) for _ in range(3))
    invstd = draw(arrays(dtype, (maps,), 0.125, 3.0))
    span = draw(st.integers(1, spatial))  # values per element: the plane on the CPU, one on the GPU
    return dtype, [x, mean, invstd, scale, bias, maps, spatial, span, numpy.full_like(x, numpy.nan)]


def scaleShiftOracle(x, mean, invstd, scale, bias, maps, spatial, span, y):
    return [(x - perMap(mean, x.shape)) * perMap(invstd * scale, x.shape) + perMap(bias, x.shape)]


@st.composite
def partialsCases(draw):
    """g, x of one (N, C[, H, W]) shape in T, the center in S, shifted or not, chunks of the batch from one to one
    per image, blocks of the planes from one value to the whole plane."""
    dtype, (shape, maps, spatial) = draw(floatDtypes()), draw(mapShapes())
    acc = numpy.promote_types(dtype, numpy.float32)
    g, x, center = draw(arrays(dtype, shape)), draw(arrays(dtype, shape)), draw(arrays(acc, (maps,)))
    chunks, span, shifted = draw(st.integers(1, shape[0])), draw(st.integers(1, spatial)), draw(st.integers(0, 1))
    sums = numpy.full((2, chunks * -(-spatial // span), maps), numpy.nan, acc)
    return dtype, [g, x, center, shape[0], maps, spatial, chunks, span, shifted, sums]


def partialsOracle(g, x, center, batch, maps, spatial, chunks, span, shifted, sums):
    """Per chunk of images and block of positions (chunk-major), by explicit loops over both."""
    bounds = [k * batch // chunks for k in range(chunks + 1)]
    cx = x.reshape(batch, maps, spatial)[0, :, 0] if shifted else center
    dg = g.reshape(batch, maps, spatial) - (cx[:, None] if shifted else 0)
    dx = x.reshape(batch, maps, spatial) - cx[:, None]
    parts = [(slice(bounds[k], bounds[k + 1]), slice(first, first + span))
             for k in range(chunks) for first in range(0, spatial, span)]
    return [numpy.array([[dg[images, :, values].sum(axis=(0, 2)) for images, values in parts],
                         [(dg[images, :, values] * dx[images, :, values]).sum(axis=(0, 2))
                          for images, values in parts]])]


@st.composite
def forwardCases(draw):
    """x in T; totals in S that a batch of ``count`` values per map could give (Σd² / count >= (Σd / count)² by a
    margin, so the variance does not cancel away) or a mean and a variance; running statistics, batch statistics
    from totals (batchStats 1) or from the mean and variance (2)."""
    dtype, (shape, maps, spatial) = draw(floatDtypes()), draw(mapShapes())
    acc = numpy.promote_types(dtype, numpy.float32)
    x, scale, bias = draw(arrays(dtype, shape)), draw(arrays(dtype, (maps,))), draw(arrays(dtype, (maps,)))
    count = draw(st.integers(1, 8))
    deviation = draw(arrays(numpy.float64, (maps,), -2.0, 2.0, specials=False))
    spread = draw(arrays(numpy.float64, (maps,), 0.25, 4.0, specials=False))
    span, batchStats = draw(st.integers(1, spatial)), draw(st.integers(0, 2))
    sums = numpy.stack([deviation, deviation * deviation / count + spread] if batchStats < 2 else
                       [draw(arrays(numpy.float64, (maps,))), spread]).astype(acc)
    runningMean, runningVar = draw(arrays(acc, (maps,))), draw(arrays(acc, (maps,), 0.0, 4.0))
    # the kernel takes them in S: the oracle must see them rounded so (a momentum of 1e-209 is 0 in float32)
    epsilon, momentum = (float(acc.type(draw(st.floats(low, 1.0)))) for low in (1e-5, 0.0))
    if batchStats == 1:  # the mean x₀ + Σd / count rounds in S: where it rounds to x, the kernel's (x - mean) · inf
        scale[numpy.isinf(scale)] = 1  # is 0 · inf = NaN and the float64 oracle's ±inf, so no infinite scale here
    return dtype, [x, sums, scale, bias, count, epsilon, momentum, count / max(count - 1, 1), maps, spatial, span,
                   batchStats, numpy.full_like(x, numpy.nan), runningMean, runningVar,
                   numpy.full((4, maps), numpy.nan, acc)]


def forwardOracle(x, sums, scale, bias, count, epsilon, momentum, unbias, maps, spatial, span, batchStats, y,
                  runningMean, runningVar, stats):
    if batchStats == 2:
        mean, var = sums
    elif batchStats:
        mean = x.reshape(-1, maps, spatial)[0, :, 0] + sums[0] / count
        var = numpy.maximum(sums[1] / count - (sums[0] / count) ** 2, 0)
    else:
        mean, var = runningMean, runningVar
    invstd = 1 / numpy.sqrt(var + epsilon)
    y = (x - perMap(mean, x.shape)) * perMap(invstd * scale, x.shape) + perMap(bias, x.shape)
    kept = (runningMean, runningVar) if batchStats else tuple(numpy.full((2, maps), numpy.nan))  # untouched in eval
    if batchStats:
        runningMean, runningVar = ((1 - momentum) * runningMean + momentum * mean,
                                   (1 - momentum) * runningVar + momentum * var * unbias)
    return [y, runningMean, runningVar, numpy.stack([mean, invstd, *kept])]


@st.composite
def backwardCases(draw):
    dtype, (shape, maps, spatial) = draw(floatDtypes()), draw(mapShapes())
    acc = numpy.promote_types(dtype, numpy.float32)
    grad, x, scale = draw(arrays(dtype, shape)), draw(arrays(dtype, shape)), draw(arrays(dtype, (maps,)))
    stats = numpy.stack([draw(arrays(acc, (maps,))), draw(arrays(acc, (maps,), 0.125, 3.0))])
    shift, sums = draw(arrays(acc, (maps,), -1.0, 1.0)), draw(arrays(acc, (2, maps)))
    scaleGrad, biasGrad = draw(arrays(dtype, (maps,))), draw(arrays(dtype, (maps,)))
    count, span = draw(st.integers(1, 8)), draw(st.integers(1, spatial))
    batchStats = draw(st.integers(0, 1))
    return dtype, [grad, x, stats, shift, sums, scale, count, maps, spatial, span, batchStats,
                   numpy.full_like(x, numpy.nan), scaleGrad, biasGrad]


def backwardOracle(grad, x, stats, shift, sums, scale, count, maps, spatial, span, batchStats, ingrad, scaleGrad,
                   biasGrad):
    mean, invstd = stats
    sums = numpy.stack([sums[0], sums[1] + (shift - mean) * sums[0]])  # Σgrad (x - mean) from Σgrad (x - shift)
    g0 = sums[0] / count if batchStats else 0 * mean
    k = invstd * invstd * sums[1] / count if batchStats else 0 * mean
    ingrad = perMap(scale * invstd, x.shape) * ((grad - (x - perMap(mean, x.shape)) * perMap(k, x.shape))
                                                - perMap(g0, x.shape))
    return [ingrad, scaleGrad + sums[1] * invstd, biasGrad + sums[0]]


@st.composite
def paramGradsCases(draw):
    dtype, maps = draw(floatDtypes()), draw(st.integers(1, 6))
    acc = numpy.promote_types(dtype, numpy.float32)
    sumG, sumGX, mean, invstd = (draw(arrays(acc, (maps,))) for _ in range(4))
    shift = draw(arrays(acc, (maps,), -1.0, 1.0))
    return dtype, [sumG, sumGX, shift, mean, invstd, draw(arrays(dtype, (maps,))), draw(arrays(dtype, (maps,)))]


def paramGradsOracle(sumG, sumGX, shift, mean, invstd, scaleGrad, biasGrad):
    return [scaleGrad + (sumGX + (shift - mean) * sumG) * invstd, biasGrad + sumG]


def dropoutArguments(draw, x):
    """x, a device draw (seed, counter), p and the scale 1 / (1 - p): the arguments every dropout kernel starts with."""
    seed, counter = draw(st.integers(0, 2**64 - 1)), draw(st.integers(0, 2**64 - 1))
    p = float(numpy.float32(draw(st.floats(0.0, 0.9))))
    return [x, seed, counter, p, 1 / (1 - p)]


@st.composite
def dropoutCases(draw):
    dtype, (shape, _, _) = draw(floatDtypes()), draw(mapShapes())
    x = draw(arrays(dtype, shape))
    return dtype, dropoutArguments(draw, x) + [numpy.full_like(x, numpy.nan)]


def dropoutOracle(x, seed, counter, p, scale, y):
    uniform = numpy.array([philoxoracle.uniform(seed, counter, i) for i in range(x.size)]).reshape(x.shape)
    return [x * numpy.where(uniform >= p, 1 / (1 - p), 0.0)]  # x · 0 where dropped: NaN stays NaN


@st.composite
def softmaxGradCases(draw):
    dtype, (shape, maps, spatial) = draw(floatDtypes()), draw(mapShapes())
    grad, y = draw(arrays(dtype, shape)), draw(arrays(dtype, shape, 0.0, 1.0))
    dot = draw(arrays(dtype, shape[:1] + shape[2:]))
    return dtype, [grad, y, dot, maps, spatial, numpy.full_like(grad, numpy.nan)]


def softmaxGradOracle(grad, y, dot, maps, spatial, ingrad):
    return [y * (grad - dot[:, None])]


@st.composite
def groupNormGradCases(draw):
    """grad, x of (planes, spatial) values, and the per-plane mean and coefficients a, b, d."""
    dtype, (shape, _, spatial) = draw(floatDtypes()), draw(mapShapes())
    grad, x = draw(arrays(dtype, shape)), draw(arrays(dtype, shape))
    planes = grad.size // spatial
    mean, a, b, d = (draw(arrays(dtype, (planes,))) for _ in range(4))
    return dtype, [grad, x, mean, a, b, d, spatial, numpy.full_like(x, numpy.nan)]


def groupNormGradOracle(grad, x, mean, a, b, d, spatial, ingrad):
    planes = (-1, 1)
    rows = (a.reshape(planes) * grad.reshape(-1, spatial) - b.reshape(planes) * (x.reshape(-1, spatial)
            - mean.reshape(planes))) - d.reshape(planes)
    return [rows.reshape(grad.shape)]


def planes(args):
    """N C: the planes the GroupNorm kernel runs over (the first array's size over the spatial count)."""
    return args[0].size // args[-2]


def blocks(at):
    """N C blocks: the blocks of ``span`` values of each plane the BatchNorm kernels run over, for a kernel that
    takes ``spatial`` and ``span`` as its arguments ``at`` and ``at + 1``."""
    def size(args):
        spatial, span = args[at], args[at + 1]
        return args[0].size // spatial * -(-spatial // span)
    return size


CASES = {
    "batchnormScaleShift": (scaleShiftKer, scaleShiftCases(), scaleShiftOracle, blocks(6)),
    "batchnormPartials": (partialsKer, partialsCases(), partialsOracle,
                          lambda args: args[9].shape[1] * args[4]),
    "batchnormForward": (forwardKer, forwardCases(), forwardOracle, blocks(9)),
    "batchnormBackward": (backwardKer, backwardCases(), backwardOracle, blocks(8)),
    "batchnormParamGrads": (paramGradsKer, paramGradsCases(), paramGradsOracle, None,
                            {"nanPropagates": False}),  # a NaN 1/std reaches ∂scale, not ∂bias
    "groupNormGrad": (groupNormGradKer, groupNormGradCases(), groupNormGradOracle, planes),
    "dropout": (dropoutKer, dropoutCases(), dropoutOracle, None),
    "softmaxGrad": (softmaxGradKer, softmaxGradCases(), softmaxGradOracle, None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel(name):
    kernel, cases, oracle, size, *options = CASES[name]
    checkKernel(kernel, cases, oracle, size=size, **(options[0] if options else {}))
