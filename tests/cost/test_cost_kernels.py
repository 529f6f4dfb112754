"""The costs' gradient kernels: CPU path against float64 oracles, other paths against the CPU path."""

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.cost.bce import sigmoidGradKer
from minidl.cost.crossentropy import softmaxGradKer
from minidl.cost.mse import scaledDiffKer
from tests.kernelcheck import FLOAT_DTYPES, arrays, checkAgainstCpu, checkAgainstOracle, otherPathParams, shapes


@st.composite
def mseCases(draw):
    dtype = draw(FLOAT_DTYPES)
    shape = draw(shapes())
    pred, target = draw(arrays(dtype, shape)), draw(arrays(dtype, shape))
    return dtype, [pred, target, 1.0 / pred.size, numpy.empty_like(pred)]


@st.composite
def bceCases(draw):
    dtype = draw(FLOAT_DTYPES)
    shape = draw(shapes())
    logits, target = draw(arrays(dtype, shape, -8, 8)), draw(arrays(dtype, shape, 0, 1))
    return dtype, [logits, target, 1.0 / logits.size, numpy.empty_like(logits)]


@st.composite
def softmaxCases(draw):
    dtype = draw(FLOAT_DTYPES)
    batch, classes = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    scores = draw(arrays(dtype, (batch, classes), -10, 10))
    labels = numpy.array(draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch)), numpy.int32)
    shifted = scores - scores.max(axis=1, keepdims=True)
    logsum = numpy.log(numpy.exp(shifted).sum(axis=1)).astype(dtype)
    return dtype, [shifted, logsum, labels, classes, 1.0 / batch, numpy.empty_like(scores)]


def mseOracle(pred, target, scale, grad):
    return [(pred - target) * scale]


def bceOracle(logits, target, scale, grad):
    return [(1 / (1 + numpy.exp(-logits)) - target) * scale]


def softmaxOracle(shifted, logsum, labels, classes, scale, grad):
    probabilities = numpy.exp(shifted) / numpy.exp(shifted).sum(axis=1, keepdims=True)
    onehot = numpy.eye(classes)[labels]
    return [(probabilities - onehot) * scale]


CASES = {
    "mse": (scaledDiffKer, mseCases(), mseOracle),
    "bce": (sigmoidGradKer, bceCases(), bceOracle),
    "softmax": (softmaxGradKer, softmaxCases(), softmaxOracle),
}


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_cpu_matches_float64_oracle(name, data):
    kernel, strategy, oracle = CASES[name]
    dtype, args = data.draw(strategy)
    checkAgainstOracle(kernel, args, oracle, dtype)


@pytest.mark.parametrize("path", otherPathParams())
@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_other_paths_match_cpu(path, name, data):
    kernel, strategy, _ = CASES[name]
    dtype, args = data.draw(strategy)
    checkAgainstCpu(path, kernel, args, dtype)
