"""Predictions and targets that are views, not C-contiguous (a transposed array, a strided slice), are
valid: every cost gives on them the error and gradient it gives on contiguous copies, not a contiguity error."""

import numpy
import pytest

from minidl.backend import toDevice, toHost
from tests.cost.costcases import costCases

rng = numpy.random.default_rng(3)
COSTS = costCases(rng)


def view(values, layout):
    """The values on the device as a transposed (F-ordered) view or a strided slice along the last axis."""
    if layout == "transposed" and values.ndim == 2:
        array = toDevice(numpy.ascontiguousarray(values.T)).T
    else:
        array = toDevice(numpy.repeat(values, 2, axis=-1))[..., ::2]
    assert not array.flags.c_contiguous
    return array


@pytest.mark.parametrize("layout", ["transposed", "strided"])
@pytest.mark.parametrize("name", sorted(COSTS))
def test_costs_take_views_as_predictions_and_targets(name, layout):
    cost, targetOf = COSTS[name]
    pred = rng.standard_normal((6, 4))
    target = targetOf(pred.shape)
    expectedError, expectedGrad = cost()(toDevice(pred), toDevice(target))
    error, grad = cost()(view(pred, layout), view(target, layout))
    assert error == pytest.approx(expectedError, rel=1e-12)
    assert cost().validate(view(pred, layout), view(target, layout)) == pytest.approx(expectedError, rel=1e-12)
    numpy.testing.assert_allclose(toHost(grad), toHost(expectedGrad), rtol=1e-12, atol=1e-15)
