"""assertMatches cannot pass outputs it did not compare, NaN where a number is expected, a wrong infinity or sign."""

import numpy
import pytest

from minidl.testing import assertMatches


def test_close_outputs_pass_and_special_values_match_exactly():
    expected = [numpy.array([1.0, 2.0000001, numpy.nan, numpy.inf, -numpy.inf, -0.0])]
    assertMatches([numpy.array([1.0, 2.0, numpy.nan, numpy.inf, -numpy.inf, -0.0], numpy.float32)], expected,
                  numpy.float32, "k", signedZeros=True)


def test_an_output_the_oracle_left_out_fails():
    with pytest.raises(AssertionError, match="k: 2 outputs, 1 expected"):
        assertMatches([numpy.ones(3), numpy.full(3, 99.0)], [numpy.ones(3)], numpy.float64, "k")


def test_an_expected_value_that_only_broadcasts_fails():
    with pytest.raises(AssertionError, match=r"output 0 has shape \(3,\), expected \(\)"):
        assertMatches([numpy.ones(3)], [numpy.float64(1.0)], numpy.float64, "k")
    with pytest.raises(AssertionError, match=r"output 0 has shape \(2, 3\), expected \(3,\)"):
        assertMatches([numpy.ones((2, 3))], [numpy.ones(3)], numpy.float64, "k")


def test_values_outside_the_tolerance_fail():
    with pytest.raises(AssertionError, match="output 0: not within"):
        assertMatches([numpy.array([1.0, 2.0], numpy.float32)], [numpy.array([1.0, 2.001])], numpy.float32, "k")


@pytest.mark.parametrize("got, expected", [(0.0, numpy.nan), (numpy.nan, 0.0), (numpy.nan, numpy.inf)])
def test_nan_must_be_where_it_is_expected_and_only_there(got, expected):
    with pytest.raises(AssertionError, match="NaN where none is expected, or a number where NaN is"):
        assertMatches([numpy.array([1.0, got])], [numpy.array([1.0, expected])], numpy.float64, "k")


@pytest.mark.parametrize("got", [-numpy.inf, 1e300, numpy.finfo(numpy.float64).max])
def test_an_expected_infinity_must_be_that_infinity(got):
    with pytest.raises(AssertionError, match=r"an infinity expected: 1 of 2 elements, first at \(1,\)"):
        assertMatches([numpy.array([1.0, got])], [numpy.array([1.0, numpy.inf])], numpy.float64, "k")


def test_an_infinity_where_a_number_is_expected_fails():
    with pytest.raises(AssertionError, match="not within"):
        assertMatches([numpy.array([numpy.inf])], [numpy.array([1.0])], numpy.float64, "k")


def test_signed_zeros_are_held_only_when_asked():
    assertMatches([numpy.array([-0.0])], [numpy.array([0.0])], numpy.float64, "k")
    with pytest.raises(AssertionError, match="a zero of the wrong sign"):
        assertMatches([numpy.array([-0.0])], [numpy.array([0.0])], numpy.float64, "k", signedZeros=True)


def test_a_small_element_is_held_to_its_own_tolerance_not_the_largest_values():
    """A large value elsewhere in the output must not widen the absolute slack of a small element: 1e-3 off at an
    expected 0.01 is 10% (5000 times float32's rtol), whatever else the output holds."""
    expected = numpy.array([1e4, 0.01])
    with pytest.raises(AssertionError, match=r"not within rtol=2e-05, atol=2e-06 of each element: 1 of 2 elements, "
                                             r"first at \(1,\)"):
        assertMatches([numpy.array([1e4, 0.011], numpy.float32)], [expected], numpy.float32, "k")
    assertMatches([numpy.array([1e4 * (1 + 1e-5), 0.01 * (1 + 1e-5)])], [expected], numpy.float32, "k")
