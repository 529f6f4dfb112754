"""The kernels of BatchNorm (scale and shift, gradient), Dropout (mask) and SoftMax (gradient): CPU path
against float64 oracles, other paths against the CPU path."""

import numpy
import pytest
from hypothesis import strategies as st

from minidl.nn.batchnorm import normGradKer, scaleShiftKer, sumsKer
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
def normGradCases(draw):
    dtype, (shape, maps, spatial) = draw(floatDtypes()), draw(mapShapes())
    grad, x = draw(arrays(dtype, shape)), draw(arrays(dtype, shape))
    mean, coef, meanGrad, meanGradXhat = (draw(arrays(dtype, (maps,))) for _ in range(4))
    invstd = draw(arrays(dtype, (maps,), 0.125, 3.0))
    span = draw(st.integers(1, spatial))
    return dtype, [grad, x, mean, invstd, coef, meanGrad, meanGradXhat, maps, spatial, span,
                   numpy.full_like(x, numpy.nan)]


def normGradOracle(grad, x, mean, invstd, coef, meanGrad, meanGradXhat, maps, spatial, span, ingrad):
    xhat = (x - perMap(mean, x.shape)) * perMap(invstd, x.shape)
    return [perMap(coef, x.shape) * (grad - perMap(meanGrad, x.shape) - xhat * perMap(meanGradXhat, x.shape))]


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
def sumsCases(draw):
    """g, x of one (N, C[, H, W]) shape in T, centers in S (float32 at least, float64 for float64 T), chunks of
    the batch from one to one per image, blocks of the planes from one value to the whole plane."""
    dtype, (shape, maps, spatial) = draw(floatDtypes()), draw(mapShapes())
    acc = numpy.promote_types(dtype, numpy.float32)
    g, x = draw(arrays(dtype, shape)), draw(arrays(dtype, shape))
    centerG, centerX = draw(arrays(acc, (maps,))), draw(arrays(acc, (maps,)))
    chunks, span = draw(st.integers(1, shape[0])), draw(st.integers(1, spatial))
    sums = [numpy.full((chunks * -(-spatial // span), maps), numpy.nan, acc) for _ in range(2)]
    return dtype, [g, x, centerG, centerX, shape[0], maps, spatial, chunks, span, *sums]


def sumsOracle(g, x, centerG, centerX, batch, maps, spatial, chunks, span, sumG, sumGX):
    """Per chunk of images and block of positions (chunk-major), by explicit loops over both."""
    bounds = [k * batch // chunks for k in range(chunks + 1)]
    dg = g.reshape(batch, maps, spatial) - centerG[:, None]
    dx = x.reshape(batch, maps, spatial) - centerX[:, None]
    parts = [(slice(bounds[k], bounds[k + 1]), slice(first, first + span))
             for k in range(chunks) for first in range(0, spatial, span)]
    return [numpy.array([dg[images, :, values].sum(axis=(0, 2)) for images, values in parts]),
            numpy.array([(dg[images, :, values] * dx[images, :, values]).sum(axis=(0, 2)) for images, values in parts])]


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


def blocks(args):
    """N C blocks: the blocks of ``span`` values of each plane the BatchNorm kernels run over."""
    spatial, span = args[-3], args[-2]
    return args[0].size // spatial * -(-spatial // span)


CASES = {
    "batchnormScaleShift": (scaleShiftKer, scaleShiftCases(), scaleShiftOracle, blocks),
    "batchnormGrad": (normGradKer, normGradCases(), normGradOracle, blocks),
    "batchnormSums": (sumsKer, sumsCases(), sumsOracle, lambda args: args[9].shape[0] * args[5]),
    "groupNormGrad": (groupNormGradKer, groupNormGradCases(), groupNormGradOracle, planes),
    "dropout": (dropoutKer, dropoutCases(), dropoutOracle, None),
    "softmaxGrad": (softmaxGradKer, softmaxGradCases(), softmaxGradOracle, None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel(name):
    kernel, cases, oracle, size = CASES[name]
    checkKernel(kernel, cases, oracle, size=size)
