"""sumInto (out += Σ x over axes, summed in double): every path against a float64 oracle, special values drawn,
and an addition to what ``out`` held (a gradient accumulates)."""

import numpy
from hypothesis import strategies as st

from minidl.nn.gradsum import sumIntoKer
from minidl.testing import arrays
from minidl.testing.reductions import checkReduction, reductionCases


@st.composite
def cases(draw):
    """reductionCases' shapes, axes and x, with ``out`` drawn (zeros there) so the addition is seen."""
    dtype, (x, out), axes, keepdims = draw(reductionCases(sumIntoKer))
    return dtype, [x, draw(arrays(dtype, out.shape))], axes, keepdims


def oracle(x, out, axis, keepdims):
    return [out + numpy.sum(x, axis=axis, keepdims=keepdims)]


def bounds(x, out, axis, keepdims):
    """Summed in double and rounded once where it is added: half an ulp of out's dtype at the result, plus the
    double sum's own rounding (n eps_double Σ|x|)."""
    exact = out + numpy.sum(x, axis=axis, keepdims=keepdims)
    ulp = numpy.finfo(out.dtype).eps * numpy.abs(exact) + numpy.finfo(out.dtype).smallest_subnormal
    n = x.size // max(out.size, 1)
    return [ulp + 2 * n * numpy.finfo(numpy.float64).eps * numpy.sum(numpy.abs(x), axis=axis, keepdims=keepdims)]


def test_sum_into_adds_the_sum_on_every_path():
    checkReduction(sumIntoKer, cases(), oracle, bounds=bounds)
