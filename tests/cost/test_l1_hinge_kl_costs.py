"""Abs, SmoothL1, Hinge, SVM and KLDivergence: the error against a float64 formula written here, the
gradient against numerical differences of the error (float64), accumulation, and bad input."""

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import CostError
from minidl.backend import readChecks, toDevice, toHost
from minidl.cost import SVM, Abs, Hinge, KLDivergence, SmoothL1
from minidl.testing import checkCostGradient


def softmax(scores):
    exp = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def svmError(scores, labels, power):
    rows = numpy.arange(len(labels))
    margins = numpy.maximum(1 + scores - scores[rows, labels][:, None], 0) ** power
    margins[rows, labels] = 0
    return margins.sum() / scores.size


# name -> (cost, error formula, target maker(rng, pred)); predictions are kept away from the kinks
COSTS = {
    "abs": (Abs(), lambda p, t: numpy.abs(p - t).mean(), lambda rng, p: p + rng.choice([-1, 1], p.shape)
            * rng.uniform(0.1, 2, p.shape)),
    "smoothL1": (SmoothL1(beta=0.5), lambda p, t: numpy.where(numpy.abs(p - t) < 0.5, (p - t) ** 2, numpy.abs(p - t)
                                                              - 0.25).mean(),
                 lambda rng, p: p + rng.choice([-0.3, 0.2, 1.5], p.shape)),
    "hinge": (Hinge(), lambda p, t: numpy.maximum(1 - t * p, 0).mean(),
              lambda rng, p: rng.choice([-1.0, 1.0], p.shape)),
    "svmL1": (SVM(), lambda p, t: svmError(p, t, 1), lambda rng, p: rng.integers(0, p.shape[1], p.shape[0])),
    "svmL2": (SVM("l2"), lambda p, t: svmError(p, t, 2), lambda rng, p: rng.integers(0, p.shape[1], p.shape[0])),
    "kl": (KLDivergence(), lambda p, t: (t * (numpy.log(t) - numpy.log(softmax(p)))).sum() / len(p),
           lambda rng, p: softmax(rng.standard_normal(p.shape) * 2)),
}


def _awayFromKinks(name, pred, target):
    if name == "hinge":
        near = numpy.abs(target * pred - 1) < 0.05
        pred[near] += 0.1 * target[near]
    if name.startswith("svm"):
        pred[:] = numpy.round(pred * 4) / 4 + 0.1 * numpy.arange(pred.shape[1])  # margins never 0
    return pred


@pytest.mark.parametrize("name", sorted(COSTS))
@given(batch=st.integers(1, 4), classes=st.integers(2, 5), seed=st.integers(0, 2**16))
def test_error_gradient_and_accumulation(name, batch, classes, seed):
    cost, formula, targetOf = COSTS[name]
    rng = numpy.random.default_rng(seed)
    pred = rng.standard_normal((batch, classes)) * 2
    target = targetOf(rng, pred)
    pred = _awayFromKinks(name, pred, target)
    expected = formula(pred, target)
    cost.resetAccumulator()
    pred, target = toDevice(pred), toDevice(target)
    error, _ = cost(pred, target)
    assert error == pytest.approx(expected, rel=1e-12, abs=1e-14)
    assert cost.validate(pred, target) == pytest.approx(expected, rel=1e-12, abs=1e-14)
    assert cost.getMeanError() == pytest.approx(expected, rel=1e-12, abs=1e-14)
    checkCostGradient(cost, pred, target)


def test_kl_divergence_of_a_distribution_from_itself_is_zero():
    scores = toDevice(numpy.log([[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]]))
    error, grad = KLDivergence()(scores, toDevice(numpy.array([[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]])))
    assert error == pytest.approx(0, abs=1e-12)
    numpy.testing.assert_allclose(toHost(grad), 0, atol=1e-12)


def test_bad_targets_name_what_was_expected():
    f32 = numpy.float32
    with pytest.raises(CostError, match="targets must be -1 or 1"):
        Hinge()(toDevice(numpy.zeros((2, 3), f32)), toDevice(numpy.zeros((2, 3), f32)))
        readChecks()  # on a GPU the target values are read here
    with pytest.raises(CostError, match=r"labels must be integers of shape \(2,\)"):
        SVM()(toDevice(numpy.zeros((2, 3), f32)), toDevice(numpy.zeros(2, f32)))
    with pytest.raises(CostError, match="label 3 is out of range for 3 classes"):
        SVM()(toDevice(numpy.zeros((2, 3), f32)), toDevice(numpy.array([0, 3])))
        readChecks()
    with pytest.raises(CostError, match=r"row sums in \[0.5, 1.0\]"):
        KLDivergence()(toDevice(numpy.zeros((2, 2), f32)), toDevice(numpy.array([[0.5, 0.5], [0.25, 0.25]], f32)))
        readChecks()
    with pytest.raises(CostError, match=r"target must be float32 \(2, 3\)"):
        Abs()(toDevice(numpy.zeros((2, 3), f32)), toDevice(numpy.zeros((3, 2), f32)))
    with pytest.raises(CostError, match="mode must be 'l1' or 'l2'"):
        SVM("l3")
    with pytest.raises(CostError, match=r"beta must lie in \(0, inf\]"):
        SmoothL1(beta=0)
