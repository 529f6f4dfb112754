"""The kernel checks themselves: assertClose cannot pass outputs it did not compare."""

import numpy
import pytest

from tests.kernelcheck import assertClose


def test_close_outputs_pass():
    assertClose([numpy.array([1.0, 2.0], numpy.float32)], [numpy.array([1.0, 2.0000001])], numpy.float32, "k")


def test_an_output_the_oracle_left_out_fails():
    outputs = [numpy.ones(3), numpy.full(3, 99.0)]
    with pytest.raises(AssertionError, match="k: 2 outputs, 1 expected"):
        assertClose(outputs, [numpy.ones(3)], numpy.float64, "k")


def test_an_expected_value_that_only_broadcasts_fails():
    with pytest.raises(AssertionError, match=r"output 0 has shape \(3,\), expected \(\)"):
        assertClose([numpy.ones(3)], [numpy.float64(1.0)], numpy.float64, "k")
    with pytest.raises(AssertionError, match=r"output 0 has shape \(2, 3\), expected \(3,\)"):
        assertClose([numpy.ones((2, 3))], [numpy.ones(3)], numpy.float64, "k")


def test_values_outside_the_tolerance_fail():
    with pytest.raises(AssertionError, match="output 0"):
        assertClose([numpy.array([1.0, 2.0], numpy.float32)], [numpy.array([1.0, 2.001])], numpy.float32, "k")
