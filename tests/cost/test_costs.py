"""Costs: known values, numerical gradients in float64, accumulation, and errors on bad targets."""

import math

import numpy
import pytest

from minidl import CostError, backend
from minidl.backend import readChecks, toDevice, toHost
from minidl.cost import BCE, MSE, CrossEntropy, KLDivergence
from minidl.testing import checkCostGradient

rng = numpy.random.default_rng(2)


def device(array):
    return toDevice(numpy.asarray(array))


def test_mse_known_value():
    error, grad = MSE()(device([[1.0, 2.0], [3.0, 4.0]]), device([[1.0, 0.0], [0.0, 4.0]]))
    assert error == pytest.approx((4 + 9) / 4 / 2)
    numpy.testing.assert_allclose(toHost(grad), [[0, 0.5], [0.75, 0]])


def test_crossentropy_known_value():
    scores = numpy.array([[0.0, math.log(3.0)], [2.0, 2.0]])
    error, _ = CrossEntropy()(device(scores), device(numpy.array([1, 0])))
    assert error == pytest.approx((-math.log(0.75) - math.log(0.5)) / 2)


def test_crossentropy_is_stable_for_huge_scores():
    scores = device(numpy.array([[1000.0, 0.0], [-1000.0, 0.0]], dtype=numpy.float32))
    error, grad = CrossEntropy()(scores, device(numpy.array([0, 1])))
    assert error == pytest.approx(0.0, abs=1e-6)
    assert numpy.isfinite(toHost(grad)).all()


def test_bce_known_value_and_stability():
    logits = numpy.array([[0.0], [2.0], [-800.0]])
    target = numpy.array([[1.0], [0.0], [0.0]])
    expected = (math.log(2) + (2 + math.log1p(math.exp(-2))) + 0.0) / 3
    error, grad = BCE()(device(logits), device(target))
    assert error == pytest.approx(expected)
    assert numpy.isfinite(toHost(grad)).all()


def test_mse_gradient():
    checkCostGradient(MSE(), device(rng.standard_normal((4, 3))), device(rng.standard_normal((4, 3))))


def test_crossentropy_gradient():
    checkCostGradient(CrossEntropy(), device(rng.standard_normal((5, 4)) * 3), device(numpy.array([0, 3, 1, 1, 2])))


def test_bce_gradient():
    checkCostGradient(BCE(), device(rng.standard_normal((6, 2)) * 3), device(rng.uniform(0, 1, (6, 2))))


def test_accumulation_is_sample_weighted_and_resets():
    cost = MSE()
    with pytest.raises(CostError, match="no batch"):
        cost.getMeanError()
    first, _ = cost(device(numpy.ones((2, 1))), device(numpy.zeros((2, 1))))
    second = cost.validate(device(numpy.full((6, 1), 3.0)), device(numpy.zeros((6, 1))))
    assert (first, second) == (0.5, 4.5)
    assert cost.getMeanError() == pytest.approx((0.5 * 2 + 4.5 * 6) / 8)
    cost.resetAccumulator()
    with pytest.raises(CostError):
        cost.getMeanError()


def test_validate_equals_the_error_of_a_call():
    pred, labels = device(rng.standard_normal((7, 3))), device(rng.integers(0, 3, 7))
    assert CrossEntropy().validate(pred, labels) == pytest.approx(CrossEntropy()(pred, labels)[0])


@pytest.mark.parametrize("cost", [MSE(), BCE()], ids=repr)
def test_wrong_target_shape_or_dtype(cost):
    pred = device(numpy.zeros((4, 2), numpy.float32))
    with pytest.raises(CostError, match=r"\(4, 2\)"):
        cost(pred, device(numpy.zeros((4, 1), numpy.float32)))
    with pytest.raises(CostError, match="float32"):
        cost(pred, device(numpy.zeros((4, 2), numpy.float64)))
    assert cost.samples == 0


def test_crossentropy_bad_labels():
    """Raised at the call on the CPU; on a GPU at the next read of the device checks (no sync in the step)."""
    scores = device(numpy.zeros((3, 4), numpy.float32))
    with pytest.raises(CostError, match="label 4 is out of range for 4 classes"):
        CrossEntropy()(scores, device(numpy.array([0, 4, 1])))
        readChecks()
    with pytest.raises(CostError, match="label -1"):
        CrossEntropy()(scores, device(numpy.array([0, -1, 1])))
        readChecks()


def test_on_a_gpu_bad_labels_are_reported_at_the_read_without_a_sync_in_the_step():
    if not backend.isGpu:
        pytest.skip("on the CPU the labels are checked at the call (tests above)")
    from minidl.backend.simulated import trace

    scores = device(numpy.zeros((3, 4), numpy.float32))
    cost = CrossEntropy()
    with trace.recording() as recorded:
        error, grad = cost(scores, device(numpy.array([0, 5, 1])))  # counted as ignored until the read
        cost(scores, device(numpy.array([0, 7, 1])))
    assert not recorded.syncs
    with pytest.raises(CostError, match="label 5 is out of range"):  # the first bad batch since the last read
        readChecks()
    readChecks()  # reported once
    assert float(error) == pytest.approx(numpy.log(4)) and not toHost(grad)[1].any()
    with pytest.raises(CostError, match="integers of shape"):
        CrossEntropy()(scores, device(numpy.array([0.0, 1.0, 1.0])))
    with pytest.raises(CostError, match="integers of shape"):
        CrossEntropy()(scores, device(numpy.array([0, 1])))


def test_bce_targets_outside_unit_interval():
    with pytest.raises(CostError, match=r"\[0, 1\]"):
        BCE()(device(numpy.zeros((2, 1))), device(numpy.array([[0.5], [1.5]])))
        readChecks()  # on a GPU: raised at the read


@pytest.mark.parametrize("cost, target, message", [
    (BCE(), [[0.5, numpy.nan], [0.2, 0.1]], r"\[0, 1\]"),
    (KLDivergence(), [[0.5, numpy.nan], [0.25, 0.75]], "sum to 1"),
], ids=["bce", "kl"])
def test_a_nan_target_is_refused(cost, target, message):
    # NaN fails every comparison: a check written as "below 0 or above 1" let it through, and every error was NaN
    with pytest.raises(CostError, match=message):
        cost(device(numpy.zeros((2, 2))), device(numpy.array(target)))
        readChecks()  # on a GPU: raised at the read


def test_predictions_must_be_device_float_arrays():
    with pytest.raises(CostError, match="floating"):
        MSE()(device(numpy.zeros((2, 2), numpy.int32)), device(numpy.zeros((2, 2), numpy.int32)))
    with pytest.raises(CostError):
        MSE()([[1.0]], device(numpy.zeros((1, 1))))


@pytest.mark.parametrize("cost", [MSE(), BCE(), CrossEntropy()], ids=repr)
def test_empty_predictions_are_refused_with_a_cost_error(cost):
    """(4, 0) has a batch axis but nothing to score: a CostError, not a ZeroDivisionError or a NumPy error."""
    target = device(numpy.zeros(4, numpy.int64)) if isinstance(cost, CrossEntropy) else device(numpy.zeros((4, 0)))
    with pytest.raises(CostError, match=r"non-empty.*got shape \(4, 0\)"):
        cost(device(numpy.zeros((4, 0))), target)
    assert cost.samples == 0
