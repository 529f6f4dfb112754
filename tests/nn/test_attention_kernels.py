"""The kernels of LayerNorm (normalize, gradient) and attention (masked softmax, its gradient): CPU path
against float64 formulas, other paths against the CPU path, special values among the scores."""

import numpy
import pytest
from hypothesis import strategies as st

from minidl.nn.attention import maskedSoftmaxGradKer, maskedSoftmaxKer
from minidl.nn.layernorm import normalizeGradKer, normalizeKer
from minidl.testing import arrays, checkKernel, floatDtypes


def wideType(dtype):
    return numpy.float64 if dtype == numpy.float64 else numpy.float32


@st.composite
def normalizeCases(draw):
    dtype, rows, size = draw(floatDtypes(half=True)), draw(st.integers(1, 4)), draw(st.integers(1, 6))
    wide = wideType(dtype)
    x = draw(arrays(dtype, (rows, size)))
    mean, invstd = draw(arrays(wide, (rows,))), draw(arrays(wide, (rows,), 0.125, 3.0))
    scale, bias = draw(arrays(dtype, (size,))), draw(arrays(dtype, (size,)))
    return dtype, [x, mean, invstd, scale, bias, size, numpy.full_like(x, numpy.nan)]


def normalizeOracle(x, mean, invstd, scale, bias, size, y):
    return [(x - mean[:, None]) * invstd[:, None] * scale + bias]


@st.composite
def normalizeGradCases(draw):
    dtype, [x, mean, invstd, scale, bias, size, y] = draw(normalizeCases())
    wide = wideType(dtype)
    grad = draw(arrays(dtype, x.shape))
    meanGrad, meanGradXhat = draw(arrays(wide, mean.shape)), draw(arrays(wide, mean.shape))
    return dtype, [grad, x, mean, invstd, scale, meanGrad, meanGradXhat, size, y]


def normalizeGradOracle(grad, x, mean, invstd, scale, meanGrad, meanGradXhat, size, ingrad):
    xhat = (x - mean[:, None]) * invstd[:, None]
    return [invstd[:, None] * (grad * scale - meanGrad[:, None] - xhat * meanGradXhat[:, None])]


@st.composite
def softmaxCases(draw):
    dtype = draw(floatDtypes())
    batch, heads, steps = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 5))
    scores = draw(arrays(dtype, (batch, heads, steps, steps), -20, 20))
    if draw(st.booleans()):
        scores.flat[draw(st.integers(0, scores.size - 1))] = draw(st.sampled_from([numpy.nan, numpy.inf, -numpy.inf]))
    padding = numpy.array(draw(st.lists(st.booleans(), min_size=batch * steps, max_size=batch * steps)))
    causal, usePadding = draw(st.integers(0, 1)), draw(st.integers(0, 1))
    scale = float(draw(st.sampled_from([1.0, 0.5, 0.125])))
    return dtype, [scores, padding.reshape(batch, steps), heads, steps, steps, causal, usePadding, scale,
                   numpy.full_like(scores, numpy.nan), numpy.full((batch, heads, steps), numpy.nan, wideType(dtype))]


def softmaxOracle(scores, padding, heads, queries, keys, causal, usePadding, scale, probs, logsum):
    """Row by row: the visible keys' softmax of scale·scores, log Σ exp, zeros where no key is visible."""
    expected, logsums = numpy.zeros(scores.shape), numpy.full(logsum.shape, -numpy.inf)
    for b, h, q in numpy.ndindex(*logsum.shape):
        visible = [j for j in range(keys) if not (causal and j > q) and not (usePadding and padding[b, j])]
        if not visible:
            continue
        row = scores[b, h, q, visible] * scale
        with numpy.errstate(invalid="ignore"):
            top = row.max()
            exps = numpy.exp(row - top)
            expected[b, h, q, visible] = exps / exps.sum()
            logsums[b, h, q] = top + numpy.log(exps.sum())
    return [expected, logsums]


@st.composite
def softmaxGradCases(draw):
    dtype = draw(floatDtypes())
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dprobs, probs = draw(arrays(dtype, shape)), draw(arrays(dtype, shape, 0, 1))
    dot = draw(arrays(wideType(dtype), shape[:-1]))
    return dtype, [dprobs, probs, dot, shape[-1], 0.5, numpy.full_like(dprobs, numpy.nan)]


def softmaxGradOracle(dprobs, probs, dot, keys, scale, dscores):
    return [scale * probs * (dprobs - dot[..., None])]


SELECTING = set()

CASES = {
    "layerNorm": (normalizeKer, normalizeCases(), normalizeOracle),
    "layerNormGrad": (normalizeGradKer, normalizeGradCases(), normalizeGradOracle),
    "attentionSoftmax": (maskedSoftmaxKer, softmaxCases(), softmaxOracle),
    "attentionSoftmaxGrad": (maskedSoftmaxGradKer, softmaxGradCases(), softmaxGradOracle),
}



@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel(name):
    kernel, cases, oracle = CASES[name]
    checkKernel(kernel, cases, oracle, nanPropagates=name not in SELECTING)
