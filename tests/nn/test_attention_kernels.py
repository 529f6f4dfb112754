"""The kernels of LayerNorm (normalize, gradient, the parameter sums per part of the rows, its Reductions) and
attention (masked softmax, its gradient): CPU path against float64 formulas, other paths against the CPU path,
special values among the scores; the row kernels with every span of a row."""

import numpy
import pytest
from hypothesis import strategies as st

from minidl.nn.attention import gradDotKer, maskedSoftmaxGradKer, maskedSoftmaxKer
from minidl.nn.layernorm import (
    invstdKer,
    meanKer,
    normalizeGradKer,
    normalizeKer,
    paramSumsKer,
    parts,
    partSumsKer,
    rowSumsKer,
)
from minidl.testing import arrays, checkKernel, checkReduction, floatDtypes, rowLengths, spans


def wideType(dtype):
    return numpy.float64 if dtype == numpy.float64 else numpy.float32


def spanSize(position):
    """The loop's size of a row kernel whose span is its argument at ``position``: its first array's values over
    the span."""
    return lambda args: args[0].size // args[position]


@st.composite
def normalizeCases(draw):
    dtype, rows, size = draw(floatDtypes(half=True)), draw(st.integers(1, 4)), draw(rowLengths())
    wide = wideType(dtype)
    x = draw(arrays(dtype, (rows, size)))
    mean, invstd = draw(arrays(wide, (rows,))), draw(arrays(wide, (rows,), 0.125, 3.0))
    scale, bias = draw(arrays(dtype, (size,))), draw(arrays(dtype, (size,)))
    return dtype, [x, mean, invstd, scale, bias, size, draw(spans(size)), numpy.full_like(x, numpy.nan)]


def normalizeOracle(x, mean, invstd, scale, bias, size, span, y):
    return [(x - mean[:, None]) * invstd[:, None] * scale + bias]


@st.composite
def normalizeGradCases(draw):
    dtype, [x, mean, invstd, scale, bias, size, span, y] = draw(normalizeCases())
    wide = wideType(dtype)
    grad = draw(arrays(dtype, x.shape))
    meanGrad, meanGradXhat = draw(arrays(wide, mean.shape)), draw(arrays(wide, mean.shape))
    return dtype, [grad, x, mean, invstd, scale, meanGrad, meanGradXhat, size, span, y]


def normalizeGradOracle(grad, x, mean, invstd, scale, meanGrad, meanGradXhat, size, span, ingrad):
    xhat = (x - mean[:, None]) * invstd[:, None]
    return [invstd[:, None] * (grad * scale - meanGrad[:, None] - xhat * meanGradXhat[:, None])]


@st.composite
def softmaxCases(draw):
    dtype = draw(floatDtypes())
    batch, heads, steps = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(rowLengths(5))
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
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(rowLengths(4)))
    dprobs, probs = draw(arrays(dtype, shape)), draw(arrays(dtype, shape, 0, 1))
    dot = draw(arrays(wideType(dtype), shape[:-1]))
    return dtype, [dprobs, probs, dot, shape[-1], draw(spans(shape[-1])), 0.5, numpy.full_like(dprobs, numpy.nan)]


def softmaxGradOracle(dprobs, probs, dot, keys, span, scale, dscores):
    return [scale * probs * (dprobs - dot[..., None])]


SELECTING = set()

@st.composite
def partSumsCases(draw):
    """LayerNorm's parameter sums per part of the rows: (rows, size) data and gradient, the row statistics as the
    module makes them, the parts it splits the rows into, a span of the features."""
    dtype, case = draw(statisticsCases())
    rows, size = case["grad"].shape
    split = parts(rows)
    sums = [numpy.full((split, size), numpy.nan, case["rows"].dtype) for _ in range(2)]
    return dtype, [case["grad"], case["x"], case["mean"].reshape(-1), case["invstd"].reshape(-1), rows, size, split,
                   draw(spans(size)), *sums]


def partSumsOracle(grad, x, mean, invstd, rows, features, split, span, partScale, partBias):
    """Part p sums rows p, p + split, ...: Σ g x̂ and Σ g per feature."""
    terms = grad * ((x - mean[:, None]) * invstd[:, None])
    return [terms.reshape(-1, split, features).sum(axis=0), grad.reshape(-1, split, features).sum(axis=0)]


CASES = {
    "layerNorm": (normalizeKer, normalizeCases(), normalizeOracle, spanSize(6)),
    "layerNormPartSums": (partSumsKer, partSumsCases(), partSumsOracle,
                          lambda args: args[6] * args[5] // args[7]),
    "layerNormGrad": (normalizeGradKer, normalizeGradCases(), normalizeGradOracle, spanSize(8)),
    "attentionSoftmax": (maskedSoftmaxKer, softmaxCases(), softmaxOracle, None),
    "attentionSoftmaxGrad": (maskedSoftmaxGradKer, softmaxGradCases(), softmaxGradOracle, spanSize(4)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel(name):
    kernel, cases, oracle, size = CASES[name]
    checkKernel(kernel, cases, oracle, nanPropagates=name not in SELECTING, size=size)


@st.composite
def statisticsCases(draw):
    """LayerNorm's Reductions over (rows, size): the gradient and the input, the row statistics as (rows, 1), the
    scale as (1, size) and the outputs (the row sums' of shape (rows,), the parameter sums' of shape (size,))."""
    dtype, rows, size = draw(floatDtypes(half=True)), draw(st.integers(1, 4)), draw(st.integers(1, 40))
    wide = wideType(dtype)
    grad, x = draw(arrays(dtype, (rows, size))), draw(arrays(dtype, (rows, size)))
    # the statistics as the module makes them: a finite mean, invstd in [0.125, 3]; special values in the data
    mean, invstd = draw(arrays(wide, (rows, 1), specials=False)), draw(arrays(wide, (rows, 1), 0.125, 3.0, False))
    scale = draw(arrays(dtype, (1, size)))
    return dtype, dict(grad=grad, x=x, mean=mean, invstd=invstd, scale=scale, size=size, rows=numpy.zeros(rows, wide),
                       columns=numpy.zeros(size, dtype), epsilon=wide(1e-5))


def _rowSumBound(terms, rows, divisor=1):
    """A sum of n terms in any two orders: within 2·n·eps·Σ|term| of each other (eps of the compute type, float32
    for float16 data); each term's own products round by up to 3·eps (against a float64 oracle), and the sum's
    rounding to the output's dtype adds eps or a subnormal's spacing; ``divisor`` divides the sum (a mean)."""
    info = numpy.finfo(rows.dtype)
    total = numpy.sum(numpy.abs(terms.astype(numpy.float64)), axis=-1)
    bound = (2 * terms.shape[-1] + 4) * float(info.eps) * total / divisor + float(info.smallest_subnormal)
    return bound.reshape(rows.shape)


def _roundingOf(output, total):
    """The rounding of a value of magnitude at most ``total`` to the output's dtype."""
    info = numpy.finfo(output.dtype)
    return float(info.eps) * total + float(info.smallest_subnormal)


REDUCTIONS = {
    "layerNormMean": (meanKer, lambda c: ([c["x"], c["size"], c["rows"].reshape(-1, 1)], 1, True),
                      lambda x, size, mean, axis, keepdims: [x.mean(axis=1, keepdims=True)],
                      lambda x, size, mean, axis, keepdims: [_rowSumBound(x, mean, size)]),
    "layerNormInvstd": (invstdKer, lambda c: ([c["x"], c["mean"], c["epsilon"], c["size"], c["rows"].reshape(-1, 1)],
                                              1, True),
                        lambda x, mean, eps, size, invstd, axis, keepdims: [
                            1 / numpy.sqrt(((x - mean) ** 2).mean(axis=1, keepdims=True) + eps)],
                        None),
    "layerNormRowSums": (rowSumsKer, lambda c: ([c["grad"], c["x"], c["mean"], c["invstd"], c["scale"], c["size"],
                                                 c["rows"], c["rows"].copy()], 1, False),
                         lambda g, x, mean, invstd, scale, size, a, b, axis, keepdims: [
                             (g * scale).mean(axis=1), (g * scale * (x - mean) * invstd).mean(axis=1)],
                         lambda g, x, mean, invstd, scale, size, a, b, axis, keepdims: [  # float64 terms: a
                             _rowSumBound(g.astype(numpy.float64) * scale, a, size),  # float16 one can underflow
                             _rowSumBound(g.astype(numpy.float64) * scale * (x - mean) * invstd, a, size)]),
    "layerNormParamSums": (paramSumsKer, lambda c: ([c["grad"].astype(c["rows"].dtype), c["x"].astype(c["rows"].dtype),
                                                     c["columns"], c["columns"].copy()], 0, False),
                           lambda partScale, partBias, scaleGrad, biasGrad, axis, keepdims: [
                               partScale.sum(axis=0), partBias.sum(axis=0)],
                           lambda partScale, partBias, scaleGrad, biasGrad, axis, keepdims: [
                               _rowSumBound(partScale.T, partScale[0]) + _roundingOf(
                                   scaleGrad, numpy.abs(partScale).sum(axis=0)),
                               _rowSumBound(partBias.T, partBias[0]) + _roundingOf(
                                   biasGrad, numpy.abs(partBias).sum(axis=0))]),
}


SUMS = {"layerNormRowSums", "layerNormParamSums"}


@st.composite
def gradDotCases(draw):
    """Attention's Σ_j ∂P P over the keys of (batch, heads, queries, keys) scores: ∂P of any value, P in [0, 1]."""
    dtype = draw(floatDtypes(half=True))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(rowLengths(4)))
    dprobs, probs = draw(arrays(dtype, shape)), draw(arrays(dtype, shape, 0, 1))
    return dtype, [dprobs, probs, numpy.zeros(shape[:-1], wideType(dtype))], 3, False


def test_attention_grad_dot():
    """Special values drawn: the paths agree within the bound of a sum's reordering (its terms' products in the
    compute type), NaN and infinities exactly."""
    checkReduction(gradDotKer, gradDotCases(),
                   lambda dprobs, probs, dot, axis, keepdims: [(dprobs * probs).sum(axis=axis)],
                   bounds=lambda dprobs, probs, dot, axis, keepdims: [
                       _rowSumBound(dprobs.astype(numpy.float64) * probs, dot)],
                   signedZeros=False)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction(name):
    """Special values drawn: the paths agree within the stated bound of a sum's reordering, NaN and infinities
    exactly (the variance's 1/sqrt has no simple bound: its tolerances are the dtype's). The sums' kernels have
    outputs that read only some inputs (∂bias reads no x), so the float64 oracle alone holds their NaN."""
    kernel, build, oracle, bounds = REDUCTIONS[name]
    cases = statisticsCases().map(lambda case: (case[0], *build(case[1])))
    checkReduction(kernel, cases, oracle, bounds=bounds, signedZeros=False, nanPropagates=name not in SUMS)
