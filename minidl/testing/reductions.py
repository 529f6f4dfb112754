"""``checkReduction``: a Reduction's paths held to each other and to a float64 oracle, over hypothesis draws.

The paths are those of ``checkKernel`` (``kernelPaths``): the NumPy reference, the CUDA text compiled for the host,
and CuPy's ReductionKernel on a GPU or the simulated device. They reduce in different orders (the host's 8 partial
accumulators, CuPy's tree, NumPy's pairwise sums), so sums are compared within a bound the test states from the
maths, not bit for bit; NaN positions and infinities are compared exactly.
"""

import numpy
from hypothesis import strategies as st

from minidl.backend.reduction import Reduction, registry
from minidl.errors import TestingError
from minidl.testing.compare import assertMatches
from minidl.testing.kernels import (
    checkProperty,
    copies,
    drawScalar,
    importPackage,
    kernelPaths,
    nanInputs,
    runPath,
    wideCopies,
)
from minidl.testing.strategies import arrays, floatDtypes, shapes


def sumBound(terms, output, axis, keepdims, extra=0):
    """A ``bounds`` for ``checkReduction`` of a sum: per output, (2n + extra + 1)·eps·Σ|term| plus a subnormal's
    spacing, for n terms (``terms``, float64, the values the kernel sums) in two orders (each order within n·eps·Σ|term|
    of the exact sum, to first order); ``extra`` more eps per term for the terms' own rounding against a float64
    oracle (a product: 1, an exp: 4 ulp). ``output`` is the kernel's output array, whose dtype sets eps."""
    info = numpy.finfo(output.dtype)
    n = terms.size // max(output.size, 1)
    total = numpy.sum(numpy.abs(terms), axis=axis, keepdims=keepdims)
    return [(2 * n + extra + 1) * float(info.eps) * total + float(info.smallest_subnormal)]


@st.composite
def reductionCases(draw, kernel, dtypes=None, low=-4.0, high=4.0):
    """(dtype, args, axis, keepdims) for a Reduction without raw parameters, from its signature alone: one dtype
    for every placeholder, a shape and a set of its axes (None, every axis, now and then), arrays of that shape
    for placeholder-typed inputs, outputs of the reduced shape, scalars in [low, high] for inputs of a fixed
    type."""
    dtype = numpy.dtype(draw(dtypes if dtypes is not None else floatDtypes()))
    shape = draw(shapes())
    axes = draw(st.none() | st.sets(st.integers(0, len(shape) - 1)).map(lambda chosen: tuple(sorted(chosen))))
    keepdims = draw(st.booleans())
    reduced = range(len(shape)) if axes is None else axes
    outShape = tuple(1 if axis in reduced else side for axis, side in enumerate(shape) if keepdims
                     or axis not in reduced)
    args = []
    for param in kernel.params:
        fixed = param.dtype
        if param.isOutput:
            args.append(numpy.zeros(outShape, fixed or dtype))
        elif fixed is None:
            args.append(draw(arrays(dtype, shape, low, high)))
        else:
            args.append(drawScalar(draw, fixed, low, high))
    return dtype, args, axes, keepdims


def _assertWithin(actual, expected, bounds, what):
    """NaN and infinities where expected, exactly; finite values within their own absolute bound."""
    for index, (a, e, bound) in enumerate(zip(actual, expected, bounds)):
        a, e = numpy.asarray(a, numpy.float64), numpy.asarray(e, numpy.float64)
        assertMatches([numpy.where(numpy.isfinite(e), 0.0, a)], [numpy.where(numpy.isfinite(e), 0.0, e)],
                      numpy.float64, f"{what} (NaN and infinities)")
        with numpy.errstate(invalid="ignore"):
            far = numpy.isfinite(e) & ~(numpy.abs(a - e) <= bound)
        assert not far.any(), (f"{what}: output {index} not within the stated bound at "
                               f"{[tuple(int(i) for i in at) for at in numpy.argwhere(far)[:3]]}: got {a[far][:3]}, "
                               f"expected {e[far][:3]}, bound {numpy.broadcast_to(bound, e.shape)[far][:3]}")


def _compare(actual, expected, dtype, what, signedZeros, tolerances, bounds):
    if bounds is not None:
        _assertWithin(actual, expected, bounds, what)
    else:
        assertMatches(actual, expected, dtype, what, signedZeros, tolerances)


def _checkNanPropagates(kernel, args, axis, keepdims, outputs):
    """Where a floating input holds NaN, every floating output reducing that element is NaN."""
    nan = nanInputs(kernel, args)
    if nan is None:
        return
    reached = numpy.any(nan, axis=axis, keepdims=keepdims)
    for param, output in zip([param for param in kernel.params if param.isOutput], outputs):
        if output.dtype.kind == "f":
            lost = reached & ~numpy.isnan(output)
            assert not lost.any(), f"{kernel.name}: output {param.name} drops the NaN of its inputs at " \
                f"{[tuple(int(i) for i in index) for index in numpy.argwhere(lost)[:3]]}"


def checkReductionCase(kernel, dtype, args, axis=None, keepdims=False, oracle=None, signedZeros=True,
                       nanPropagates=True, tolerances=None, bounds=None):
    """Check one case (``checkReduction``'s rules)."""
    reference = runPath("numpy", kernel, args, axis=axis, keepdims=keepdims)
    stated = None if bounds is None else bounds(*copies(args), axis=axis, keepdims=keepdims)
    for path in kernelPaths():
        _compare(runPath(path, kernel, args, axis=axis, keepdims=keepdims), reference, dtype,
                 f"{kernel.name} on {path} against its NumPy reference", signedZeros, tolerances, stated)
    if oracle is not None:
        with numpy.errstate(all="ignore"):
            expected = oracle(*wideCopies(args), axis=axis, keepdims=keepdims)
        _compare(reference, expected, dtype, f"{kernel.name}'s NumPy reference against the float64 oracle", False,
                 tolerances, stated)
    if nanPropagates:
        _checkNanPropagates(kernel, args, axis, keepdims, reference)


def checkReduction(kernel, cases=None, oracle=None, *, bounds=None, signedZeros=True, nanPropagates=True,
                   tolerances=None, hypothesisSettings=None):
    """Property-test a ``Reduction`` on every path that can run here; raise AssertionError (with the failing case,
    as hypothesis reports it) at the first disagreement.

    - ``cases``: a hypothesis strategy of ``(dtype, args, axis, keepdims)``, built with ``arrays`` (values include
      NaN, ±inf, -0.0 and subnormals unless ``specials=False``), ``shapes`` and ``floatDtypes``; without it,
      ``reductionCases(kernel)`` draws them from the signature (kernels without raw parameters).
    - ``oracle(*args, axis=, keepdims=)``: the expected outputs in float64, from float64 copies of the arrays.
    - ``bounds(*args, axis=, keepdims=)``: per output, the absolute error the paths may differ by, stated from the
      maths (for a sum of n values in any order, about ``n·eps·sum|x|``); without it, ``tolerances`` ((rtol, atol),
      by default ``TOLERANCES[dtype]``) as for ``checkKernel``, with zeros' signs held when ``signedZeros``. NaN
      positions and infinities are held exactly either way.
    - ``nanPropagates``: a NaN among an output's input elements makes it NaN (sums and products; not fmax/fmin).
    - ``hypothesisSettings``: as for ``checkKernel``.
    """
    if not isinstance(kernel, Reduction):
        raise TestingError(f"checkReduction checks a Reduction, got {kernel!r}")

    def checkOne(dtype, args, axis, keepdims):
        checkReductionCase(kernel, dtype, args, axis, keepdims, oracle, signedZeros, nanPropagates, tolerances, bounds)

    checkProperty("checkReduction", kernel, cases, reductionCases, hypothesisSettings, checkOne)


def packageReductions():
    """Every Reduction minidl defines (``importPackage``)."""
    importPackage()
    return [kernel for kernel in registry if getattr(kernel.reference, "__module__", "").startswith("minidl.")]
