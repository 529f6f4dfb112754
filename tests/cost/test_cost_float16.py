"""float16 predictions: every cost's error over a batch whose sums pass float16's largest value (65504) is
finite and agrees with the float64 error."""

import numpy
import pytest

from minidl.backend import toDevice
from minidl.cost import BCE, MSE, SVM, Abs, CrossEntropy, Hinge, KLDivergence, SmoothL1

rng = numpy.random.default_rng(4)


def _softmax(scores):
    exp = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


COSTS = {  # name -> (cost, target maker from the predictions' shape)
    "mse": (MSE, lambda shape: rng.standard_normal(shape)),
    "abs": (Abs, lambda shape: rng.standard_normal(shape)),
    "smoothL1": (SmoothL1, lambda shape: rng.standard_normal(shape)),
    "bce": (BCE, lambda shape: rng.uniform(0, 1, shape)),
    "hinge": (Hinge, lambda shape: rng.choice([-1.0, 1.0], shape)),
    "kl": (KLDivergence, lambda shape: _softmax(rng.standard_normal(shape) * 2)),
    "crossEntropy": (CrossEntropy, lambda shape: rng.integers(0, shape[1], shape[0])),
    "svm": (SVM, lambda shape: rng.integers(0, shape[1], shape[0])),
}


@pytest.mark.parametrize("name", sorted(COSTS))
def test_float16_error_of_a_large_batch_is_finite_and_matches_float64(name):
    cost, targetOf = COSTS[name]
    pred = (rng.standard_normal((30000, 10)) * 3).astype(numpy.float16)  # Σ of every cost's terms > 65504
    target = targetOf(pred.shape)
    half = target if target.dtype.kind == "i" else target.astype(numpy.float16)
    full = target if target.dtype.kind == "i" else half.astype(numpy.float64)
    expected = cost().validate(toDevice(pred, numpy.float64), toDevice(full))
    error, _ = cost()(toDevice(pred), toDevice(half))
    assert error == pytest.approx(expected, rel=1e-2)
    assert cost().validate(toDevice(pred), toDevice(half)) == pytest.approx(expected, rel=1e-2)
