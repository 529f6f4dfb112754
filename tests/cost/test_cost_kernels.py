"""The costs' gradient kernels: CPU path against float64 oracles, other paths against the CPU path."""

import numpy
import pytest
from hypothesis import strategies as st

from minidl.cost.abs import absGradKer
from minidl.cost.bce import bceGradKer
from minidl.cost.cost import accumulateKer
from minidl.cost.crossentropy import crossEntropyGradKer
from minidl.cost.hinge import hingeGradKer
from minidl.cost.kldivergence import klGradKer
from minidl.cost.mse import mseGradKer
from minidl.cost.smoothl1 import smoothL1GradKer
from minidl.cost.svm import svmGradKer
from minidl.testing import arrays, checkKernel, floatDtypes, shapes


@st.composite
def mseCases(draw):
    dtype = draw(floatDtypes())
    shape = draw(shapes())
    pred, target = draw(arrays(dtype, shape)), draw(arrays(dtype, shape))
    return dtype, [pred, target, 1.0 / pred.size, numpy.empty_like(pred)]


@st.composite
def bceCases(draw):
    dtype = draw(floatDtypes())
    shape = draw(shapes())
    logits, target = draw(arrays(dtype, shape, -8, 8)), draw(arrays(dtype, shape, 0, 1))
    return dtype, [logits, target, 1.0 / logits.size, numpy.empty_like(logits)]


@st.composite
def softmaxCases(draw):
    dtype = draw(floatDtypes())
    batch, classes = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    scores = draw(arrays(dtype, (batch, classes), -10, 10))
    labels = numpy.array(draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch)), numpy.int32)
    with numpy.errstate(all="ignore"):  # NaN and infinities among the scores
        shifted = scores - scores.max(axis=1, keepdims=True)
        logsum = numpy.log(numpy.exp(shifted).sum(axis=1)).astype(dtype)
    return dtype, [shifted, logsum, labels, classes, 1.0 / batch, numpy.empty_like(scores)]


def mseOracle(pred, target, scale, grad):
    return [(pred - target) * scale]


def bceOracle(logits, target, scale, grad):
    return [(1 / (1 + numpy.exp(-logits)) - target) * scale]


@st.composite
def crossEntropyCases(draw):
    """Scores with each row's log Σ exp as the cost computes it (the row's maximum plus the log of its sum of
    exponentials); some labels ignored (-1) or out of range (>= classes: a bad batch that its RangeCheck reports
    later), class weights, label smoothing; the scale 1 / Σ w_y as the one-element array the cost computes."""
    dtype = draw(floatDtypes())
    batch, classes = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    scores = draw(arrays(dtype, (batch, classes), -10, 10))
    with numpy.errstate(all="ignore"):  # NaN and infinities among the scores
        top = numpy.fmax.reduce(scores, axis=1, initial=-numpy.inf)
        lse = (top + numpy.log(numpy.exp(scores - top[:, None]).sum(axis=1))).astype(dtype)
    labels = numpy.array(draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch)))
    kinds = numpy.array(draw(st.lists(st.sampled_from(["kept", "ignored", "out"]), min_size=batch, max_size=batch)))
    labels = numpy.where(kinds == "ignored", -1, numpy.where(kinds == "out", labels + classes, labels))
    weights = draw(arrays(dtype, (classes,), 0, 2))
    smooth = float(dtype(draw(st.sampled_from([0.0, 0.1, 0.5]))))
    return dtype, [scores, lse, labels.astype(numpy.int32), weights, classes, smooth, float(weights.sum()),
                   numpy.array([1.0 / batch], dtype), numpy.empty_like(scores)]


def crossEntropyOracle(scores, lse, labels, weights, classes, smooth, weightSum, scale, grad):
    """Row r: ∂/∂s of (1 - ε) w_y (-log p_y) + ε/C Σ_c w_c (-log p_c), p the softmax of the row's scores (computed
    here, not from lse); 0 for an ignored or out-of-range row."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    probabilities = numpy.exp(shifted) / numpy.exp(shifted).sum(axis=1, keepdims=True)
    valid = (labels >= 0) & (labels < classes)
    safe = numpy.where(valid, labels, 0)
    onehot = numpy.eye(classes)[safe]
    picked = weights[safe][:, None]
    rows = (1 - smooth) * picked * (probabilities - onehot)
    rows += smooth / classes * (weights.sum() * probabilities - weights)
    return [numpy.where(valid[:, None], rows, 0.0) * scale[0]]


@st.composite
def smoothL1Cases(draw):
    dtype, args = draw(mseCases())
    return dtype, args[:2] + [float(numpy.float32(draw(st.floats(0.1, 3.0))))] + args[2:]


def absOracle(pred, target, scale, grad):
    return [numpy.sign(pred - target) * scale]


def smoothL1Oracle(pred, target, beta, scale, grad):
    d = pred - target
    return [numpy.where(numpy.abs(d) < beta, d / beta, numpy.sign(d)) * scale]


@st.composite
def hingeCases(draw):
    dtype = draw(floatDtypes())
    shape = draw(shapes())
    pred = draw(arrays(dtype, shape, -3, 3))
    target = numpy.where(draw(arrays(dtype, shape, -1, 1)) >= 0, 1, -1).astype(dtype)
    return dtype, [pred, target, 1.0 / pred.size, numpy.empty_like(pred)]


def hingeOracle(pred, target, scale, grad):
    margin = target * pred
    return [numpy.where(numpy.isnan(margin), numpy.nan, numpy.where(margin < 1, -target, 0.0)) * scale]


@st.composite
def svmCases(draw):
    dtype, [shifted, logsum, labels, classes, scale, grad] = draw(softmaxCases())
    del logsum
    scores = numpy.round(shifted * 4) / 4  # quarters: margins are exact, so paths agree on which are > 0
    return dtype, [scores, labels, classes, draw(st.integers(0, 1)), 1.0 / scores.size, grad]


def svmOracle(scores, labels, classes, squared, scale, grad):
    rows = numpy.arange(len(labels))
    margins = numpy.maximum(1 + scores - scores[rows, labels][:, None], 0)
    margins[rows, labels] = 0
    out = 2 * margins if squared else numpy.sign(margins)
    out[rows, labels] = -out.sum(axis=1)
    return [out * scale]


@st.composite
def klCases(draw):
    dtype, [shifted, logsum, labels, classes, scale, grad] = draw(softmaxCases())
    del labels
    weights = draw(arrays(dtype, shifted.shape, 0, 1))
    with numpy.errstate(all="ignore"):
        target = (weights / numpy.maximum(weights.sum(axis=1, keepdims=True), 1e-3)).astype(dtype)
    return dtype, [shifted, logsum, target, classes, scale, grad]


def klOracle(shifted, logsum, target, classes, scale, grad):
    probabilities = numpy.exp(shifted) / numpy.exp(shifted).sum(axis=1, keepdims=True)
    return [(probabilities - target) * scale]


CASES = {
    "abs": (absGradKer, mseCases(), absOracle),
    "smoothL1": (smoothL1GradKer, smoothL1Cases(), smoothL1Oracle),
    "hinge": (hingeGradKer, hingeCases(), hingeOracle),
    "svm": (svmGradKer, svmCases(), svmOracle),
    "kl": (klGradKer, klCases(), klOracle),
    "mse": (mseGradKer, mseCases(), mseOracle),
    "bce": (bceGradKer, bceCases(), bceOracle),
    "crossEntropy": (crossEntropyGradKer, crossEntropyCases(), crossEntropyOracle),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel(name):
    # CrossEntropy's ignored rows have gradient 0 whatever their scores (as PyTorch's): NaN need not reach them
    checkKernel(*CASES[name], nanPropagates=name != "crossEntropy")


def test_the_accumulators_kernel():
    """A batch's error times its samples added to the float64 sum: Σ error·samples."""
    checkKernel(accumulateKer, oracle=lambda error, samples, total: [total + error * samples])
