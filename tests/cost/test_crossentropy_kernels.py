"""CrossEntropy's error kernels: the rows' losses and weights, the weighted sum of shifted scores (label smoothing),
the two sums over the rows and the mean, every path against float64 formulas, special values drawn. (The gradient
kernel is checked with the other costs' in test_cost_kernels.py; the cost as a whole against PyTorch in
test_crossentropy_options.py.)"""

import numpy
from hypothesis import strategies as st

from minidl.cost.crossentropy import meanKer, rowsKer, shiftedDotKer, sumsKer
from minidl.testing import arrays, checkKernel, checkReduction, floatDtypes, sumBound


@st.composite
def rowCases(draw):
    """Scores of 1-8 rows and 1-8 classes with their rows' maxima and sums of exponentials as the cost computes
    them; labels kept, ignored (-1) or out of range (a bad batch that its RangeCheck reports later); class weights;
    smoothing 0, 0.1 or 0.5, with the weighted sums of shifted scores it reads."""
    dtype = draw(floatDtypes())
    rows, classes = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    scores = draw(arrays(dtype, (rows, classes), -10, 10))
    weights = draw(arrays(dtype, (classes,), 0, 2, specials=False))
    labels = numpy.array(draw(st.lists(st.integers(0, classes - 1), min_size=rows, max_size=rows)))
    kinds = numpy.array(draw(st.lists(st.sampled_from(["kept", "ignored", "out"]), min_size=rows, max_size=rows)))
    labels = numpy.where(kinds == "ignored", -1, numpy.where(kinds == "out", labels + classes, labels))
    with numpy.errstate(all="ignore"):
        top = numpy.fmax.reduce(scores, axis=1, initial=-numpy.inf).astype(dtype)
        total = numpy.exp(scores - top[:, None]).sum(axis=1).astype(dtype)
        shiftedDot = ((scores - top[:, None]) * weights).sum(axis=1).astype(dtype)
    smooth = float(dtype(draw(st.sampled_from([0.0, 0.1, 0.5]))))
    outputs = [numpy.empty(rows, dtype), numpy.empty(rows, numpy.float64), numpy.empty(rows, numpy.float64)]
    return dtype, [scores, top, total, labels.astype(numpy.int32), weights, shiftedDot, classes, smooth,
                   float(weights.sum()), *outputs]


def rowsOracle(scores, top, total, labels, weights, shiftedDot, classes, smooth, weightSum, lse, loss, picked):
    """Row r: lse = log Σ_c exp(s_c) (from the row's maximum and sum as given); loss = (1 - ε) w_y (lse - s_y)
    + ε/C Σ_c w_c (lse - s_c), each class's term summed here; weight w_y; both 0 for a label out of [0, C)."""
    valid = (labels >= 0) & (labels < classes)
    safe = numpy.where(valid, labels, 0)
    logSumExp = top + numpy.log(total)
    nll = logSumExp - scores[numpy.arange(len(labels)), safe]
    smoothed = (weights * (logSumExp[:, None] - scores)).sum(axis=1) if smooth else 0.0
    rowLoss = (1 - smooth) * weights[safe] * nll + smooth / classes * smoothed
    return [logSumExp, numpy.where(valid, rowLoss, 0.0), numpy.where(valid, weights[safe], 0.0)]


def test_each_rows_loss_and_weight():
    # an ignored row's loss and weight are 0 whatever its scores (as PyTorch's): NaN need not reach them
    checkKernel(rowsKer, rowCases(), rowsOracle, nanPropagates=False)


def test_the_weighted_sum_of_shifted_scores():
    def terms(scores, top, weights):
        with numpy.errstate(all="ignore"):
            return (scores - top) * weights

    checkReduction(shiftedDotKer, oracle=lambda scores, top, weights, dot, axis, keepdims: [
        terms(scores, top, weights).sum(axis=axis, keepdims=keepdims)],
        bounds=lambda scores, top, weights, dot, axis, keepdims: sumBound(
            terms(scores.astype(numpy.float64), top, weights), dot, axis, keepdims, extra=1))


@st.composite
def sumsCases(draw):
    """The two rows of float64 parts (each row's loss, each row's weight) of 1 to 40 rows, summed along the rows."""
    rows = draw(st.integers(1, 40))
    parts = draw(arrays(numpy.float64, (2, rows), 0, 100))
    return numpy.dtype(numpy.float64), [parts, numpy.empty(2, numpy.float64)], 1, False


def test_the_sums_over_the_rows():
    checkReduction(sumsKer, sumsCases(),
                   oracle=lambda parts, sums, axis, keepdims: [parts.sum(axis=axis, keepdims=keepdims)],
                   bounds=lambda parts, sums, axis, keepdims: sumBound(parts, sums, axis, keepdims, extra=1))


@st.composite
def meanCases(draw):
    """Σ loss (any, NaN and infinities included) and Σ w_y (0 when every label was ignored, else positive)."""
    dtype = draw(floatDtypes())
    lossSum = draw(arrays(numpy.float64, (1,), 0, 100))[0]
    weightSum = draw(st.sampled_from([0.0, 1e-30, 0.5, 3.0, 128.0]))
    return dtype, [numpy.array([lossSum, weightSum]), numpy.empty((), numpy.float64), numpy.empty(1, dtype)]


def meanOracle(sums, error, scale):
    """error = Σ loss / Σ w_y and scale = 1 / Σ w_y, both 0 when Σ w_y is 0 (a batch with nothing to learn)."""
    positive = sums[1] > 0
    with numpy.errstate(all="ignore"):
        return [numpy.array(sums[0] / sums[1] if positive else 0.0), numpy.array([1 / sums[1] if positive else 0.0])]


def test_the_mean_and_the_gradients_scale():
    checkKernel(meanKer, meanCases(), meanOracle)
