"""BatchNorm's two Reductions (its step on a GPU): each map's mean and variance (``statsKer``) and backward's sums
(``gradSumsKer``), on every path against their NumPy reference and a float64 oracle, special values drawn (a map
holding NaN or an infinity gets NaN everywhere), and the variance of data far from zero kept (the shifted sums)."""

import warnings

import numpy
import pytest
from hypothesis import strategies as st

from minidl.nn.batchnorm import gradSumsKer, statsKer
from minidl.testing import arrays, checkReduction, floatDtypes, kernelPaths, runPath

AXES = (0, 2)


def wide(dtype):
    return numpy.dtype(numpy.float64 if numpy.dtype(dtype) == numpy.float64 else numpy.float32)


@st.composite
def planes(draw, dtype):
    """(N, C, spatial) data of ``dtype``, values in [-4, 4] about an offset (0, or 100 where the dtype holds it).
    Every side at least 2, so that every case has one geometry, the one the signature table records (axes of 1
    merge away, and each merged geometry is a binding of its own)."""
    shape = (draw(st.integers(2, 4)), draw(st.integers(2, 5)), draw(st.integers(2, 6)))
    offset = draw(st.sampled_from([0.0, 100.0] if dtype != numpy.float16 else [0.0]))
    return (draw(arrays(dtype, shape)) + dtype.type(offset)).astype(dtype)


@st.composite
def statsCases(draw):
    dtype = numpy.dtype(draw(floatDtypes(half=True)))
    x = draw(planes(dtype))
    maps = x.shape[1]
    return dtype, [x, *(numpy.full(maps, numpy.nan, wide(dtype)) for _ in range(2))], AXES, False


@st.composite
def gradSumsCases(draw):
    dtype = numpy.dtype(draw(floatDtypes(half=True)))
    x = draw(planes(dtype))
    grad = draw(arrays(dtype, x.shape))
    return dtype, [grad, x, *(numpy.full(x.shape[1], numpy.nan, wide(dtype)) for _ in range(3))], AXES, False


def nonFinite(*arrays):
    """Per map, whether any of the arrays holds NaN or an infinity there."""
    return numpy.any([~numpy.isfinite(array).all(axis=AXES) for array in arrays], axis=0)


def statsOracle(x, mean, var, axis, keepdims):
    with numpy.errstate(invalid="ignore"):
        m = x.mean(axis=axis, keepdims=True)
        v = ((x - m) ** 2).mean(axis=axis)
    bad = nonFinite(x)
    return [numpy.where(bad, numpy.nan, m.reshape(-1)), numpy.where(bad, numpy.nan, v)]


def gradSumsOracle(grad, x, center, sumG, sumGX, axis, keepdims):
    with numpy.errstate(invalid="ignore"):
        m = x.mean(axis=axis, keepdims=True)
        outputs = [m.reshape(-1), grad.sum(axis=axis), (grad * (x - m)).sum(axis=axis)]
    bad = nonFinite(grad, x)
    return [numpy.where(bad, numpy.nan, output) for output in outputs]


def rounding(x, out):
    """n eps Σ-style scale per map, in the compute type of ``out``, for n values of x per map."""
    info = numpy.finfo(out.dtype)
    n = x.size // x.shape[1]
    return 8 * n * info.eps, info.tiny


def finiteAbs(array):
    return numpy.where(numpy.isfinite(array), numpy.abs(array), 0).astype(numpy.float64)


def statsBounds(x, mean, var, axis, keepdims):
    """The mean within n eps max|x|, the variance within n eps max|x - mean|² (sums about a shift inside the data,
    so nothing cancels) plus the square of the mean's rounding."""
    scale, tiny = rounding(x, mean)
    w = finiteAbs(x)
    with numpy.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of a map of non-finite values only
        spread = finiteAbs(x - numpy.nanmean(numpy.where(numpy.isfinite(x), x, numpy.nan), axis=axis, keepdims=True))
    # the variance also carries the square of the mean's rounding (NumPy's var takes it about its rounded mean)
    return [scale * w.max(axis=axis) + tiny,
            scale * (spread.max(axis=axis) ** 2 + spread.max(axis=axis)) + (scale * w.max(axis=axis)) ** 2 + tiny]


def gradSumsBounds(grad, x, center, sumG, sumGX, axis, keepdims):
    """The center within n eps max|x|, Σgrad within n eps Σ|grad|, Σgrad (x - center) within n eps Σ|grad| (the
    spread + max|x|: it is taken about the center as rounded, which the oracle's exact mean differs from)."""
    scale, tiny = rounding(x, center)
    w, g = finiteAbs(x), finiteAbs(grad)
    with numpy.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of a map of non-finite values only
        mean = numpy.nanmean(numpy.where(numpy.isfinite(x), x, numpy.nan), axis=axis, keepdims=True)
    spread = finiteAbs(x - mean).max(axis=axis)
    return [scale * w.max(axis=axis) + tiny, scale * g.sum(axis=axis) + tiny,
            scale * g.sum(axis=axis) * (spread + w.max(axis=axis) + 1) + tiny]


def test_the_statistics_of_each_map_on_every_path():
    checkReduction(statsKer, statsCases(), statsOracle, bounds=statsBounds, signedZeros=False)


def test_the_gradient_sums_of_each_map_on_every_path():
    checkReduction(gradSumsKer, gradSumsCases(), gradSumsOracle, bounds=gradSumsBounds, signedZeros=False)


@pytest.mark.parametrize("path", ["numpy", *kernelPaths()])
def test_data_far_from_zero_keeps_its_variance(path):
    """x = 10^4 + N(0, 1) in float32: Σx² / n - mean² would lose every digit of the variance (10^8 against
    float32's 7 digits); the sums about a shift inside the data keep it to float32's rounding."""
    rng = numpy.random.default_rng(3)
    x = (1e4 + rng.standard_normal((16, 3, 300))).astype(numpy.float32)
    mean, var = runPath(path, statsKer, [x, numpy.zeros(3, numpy.float32), numpy.zeros(3, numpy.float32)],
                        axis=AXES)
    exact = x.astype(numpy.float64)
    numpy.testing.assert_allclose(mean, exact.mean(axis=AXES), rtol=1e-6)
    numpy.testing.assert_allclose(var, exact.var(axis=AXES), rtol=1e-4)
    grad = rng.standard_normal(x.shape).astype(numpy.float32)
    center, sumG, sumGX = runPath(path, gradSumsKer, [grad, x, *(numpy.zeros(3, numpy.float32) for _ in range(3))],
                                  axis=AXES)
    terms = grad.astype(numpy.float64) * (exact - exact.mean(axis=AXES, keepdims=True))
    # within float32's rounding of the terms' magnitude (Σ|terms| ~ 10^4 here; Σx·grad alone is ~10^6)
    numpy.testing.assert_allclose(sumGX + (center - exact.mean(axis=AXES)) * sumG, terms.sum(axis=AXES), rtol=0,
                                  atol=1e-6 * numpy.abs(terms).sum())
