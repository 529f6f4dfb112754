"""float16 predictions: every cost's error over a batch whose sums pass float16's largest value (65504) is
finite and agrees with the float64 error."""

import numpy
import pytest

from minidl.backend import toDevice
from tests.cost.costcases import costCases

rng = numpy.random.default_rng(4)
COSTS = costCases(rng)


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
