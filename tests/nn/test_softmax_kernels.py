"""SoftMax's kernels: its three Reductions (the maximum, the sum of exponentials, backward's Σ grad y) and the kernel
that writes y, every path against float64 formulas, special values drawn."""

import numpy
from hypothesis import strategies as st

from minidl.nn.softmax import dotKer, expSumKer, maxKer, softmaxKer
from minidl.testing import arrays, checkKernel, checkReduction, floatDtypes, sumBound


def test_the_maximum_is_exact():
    checkReduction(maxKer, oracle=lambda x, top, axis, keepdims: [numpy.fmax.reduce(
        x, axis=axis, keepdims=keepdims, initial=-numpy.inf)], tolerances=(0, 0), signedZeros=False,
        nanPropagates=False)


def test_the_sum_of_exponentials():
    def terms(x, top):
        with numpy.errstate(all="ignore"):
            return numpy.exp(x - top)

    checkReduction(expSumKer, oracle=lambda x, top, total, axis, keepdims: [
        terms(x, top).sum(axis=axis, keepdims=keepdims)],
        bounds=lambda x, top, total, axis, keepdims: sumBound(terms(x.astype(numpy.float64), top), total, axis,
                                                               keepdims, extra=4))


def test_backwards_dot():
    checkReduction(dotKer, oracle=lambda grad, y, dot, axis, keepdims: [(grad * y).sum(axis=axis, keepdims=keepdims)],
                   bounds=lambda grad, y, dot, axis, keepdims: sumBound(
                       grad.astype(numpy.float64) * y, dot, axis, keepdims, extra=1))


@st.composite
def softmaxCases(draw):
    """x as (outer, maps, spatial), its per-(outer, spatial) maximum and a positive sum."""
    dtype = numpy.dtype(draw(floatDtypes(half=True)))
    wide = numpy.float64 if dtype == numpy.float64 else numpy.float32
    outer, maps, spatial = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    x = draw(arrays(dtype, (outer, maps, spatial)))
    top = draw(arrays(dtype, (outer, spatial), specials=False))
    total = draw(arrays(wide, (outer, spatial), 0.5, 8.0, specials=False))
    return dtype, [x, top, total, maps, spatial, numpy.full_like(x, numpy.nan)]


def softmaxOracle(x, top, total, maps, spatial, y):
    return [numpy.exp(x - top[:, None, :]) / total[:, None, :]]


def test_the_kernel_that_writes_y():
    checkKernel(softmaxKer, softmaxCases(), softmaxOracle)
