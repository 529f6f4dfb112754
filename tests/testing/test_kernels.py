"""checkKernel finds the defects it exists for: a path that drops NaN, a formula the oracle disagrees with, a NaN
lost on every path; and it passes a right kernel from its signature alone. arrays draws every special value."""

import numpy
import pytest
from hypothesis import Phase, find, settings
from hypothesis import strategies as st

from minidl import TestingError
from minidl.backend import Elementwise
from minidl.testing import arrays, checkKernel, shapes, specialValues


def _reluNumpy(x, y):
    numpy.maximum(x, 0, out=y)
    y += 0


# the relu of an earlier minidl: its CUDA text turned NaN into 0, its reference kept NaN
nanDroppingRelu = Elementwise("test_nan_dropping_relu", "T x", "T y", "y = x > (T)0 ? x : (T)0", _reluNumpy)
relu = Elementwise("test_relu", "T x", "T y", "y = x > (T)0 || isnan(x) ? x : (T)0", _reluNumpy)


def _axpyNumpy(x, a, y):
    y += a * x


axpy = Elementwise("test_axpy", "T x, float32 a", "T y", "y += a * x", _axpyNumpy)


def _selectNumpy(x, y):
    numpy.copyto(y, numpy.where(x > 0, x, 0))


# consistent on every path, yet NaN in, 0 out
nanSelecting = Elementwise("test_nan_selecting", "T x", "T y", "y = x > (T)0 ? x : (T)0", _selectNumpy)


# failures are expected: stop at the first, unshrunk
UNTIL_FAILURE = settings(max_examples=100, phases=[Phase.generate], database=None)


def reluOracle(x, y):
    return [numpy.where(numpy.isnan(x), x, numpy.maximum(x, 0))]


def test_a_right_kernel_passes_from_its_signature_alone():
    checkKernel(relu, oracle=reluOracle)
    checkKernel(axpy, oracle=lambda x, a, y: [y + numpy.float32(a) * x])


def test_a_path_that_drops_nan_fails():
    with pytest.raises(AssertionError, match="test_nan_dropping_relu on (host|cupy) against its NumPy reference"):
        checkKernel(nanDroppingRelu, hypothesisSettings=UNTIL_FAILURE)


def test_a_formula_the_oracle_disagrees_with_fails():
    with pytest.raises(AssertionError, match="test_axpy's NumPy reference against the float64 oracle"):
        checkKernel(axpy, oracle=lambda x, a, y: [y + 2 * a * x], hypothesisSettings=UNTIL_FAILURE)


def test_a_nan_lost_on_every_path_fails_even_without_an_oracle():
    with pytest.raises(AssertionError, match="test_nan_selecting: output y drops NaN from its inputs"):
        checkKernel(nanSelecting, hypothesisSettings=UNTIL_FAILURE)
    checkKernel(nanSelecting, nanPropagates=False, signedZeros=False)


def test_given_cases_are_used():
    seen = []

    @st.composite
    def cases(draw):
        x = draw(arrays(numpy.float64, draw(shapes()), 1.0, 2.0, specials=False))
        seen.append(x)
        return numpy.float64, [x, numpy.zeros_like(x)]

    checkKernel(relu, cases(), oracle=lambda x, y: [x], hypothesisSettings=settings(max_examples=5))
    assert seen and all(((x >= 1) & (x <= 2)).all() for x in seen)


def test_a_kernel_with_raw_parameters_needs_cases():
    gather = Elementwise("test_gather", "raw T x, int32 n", "T y", "y = x[i % n]", lambda x, n, y: None)
    with pytest.raises(TestingError, match=r"test_gather has raw parameters \(x\).*pass checkKernel a strategy"):
        checkKernel(gather)


def test_only_an_elementwise_kernel_is_checked():
    with pytest.raises(TestingError, match="checkKernel checks an Elementwise kernel, got <ufunc 'add'>"):
        checkKernel(numpy.add)


UNTIL_FOUND = settings(max_examples=2000, phases=[Phase.generate], database=None)


@pytest.mark.parametrize("dtype", [numpy.float16, numpy.float32, numpy.float64])
def test_arrays_draw_every_special_value(dtype):
    def holds(special):
        if numpy.isnan(special):
            return lambda array: numpy.isnan(array).any()
        return lambda array: ((array == special) & (numpy.signbit(array) == numpy.signbit(special))).any()

    for special in specialValues(dtype):
        array = find(arrays(dtype, (4,)), holds(special), settings=UNTIL_FOUND)  # raises if never drawn
        assert (numpy.abs(array[numpy.isfinite(array)]) <= 4).all()
