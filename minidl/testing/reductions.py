"""``checkReduction``: a Reduction's paths held to each other and to a float64 oracle, over hypothesis draws.

The paths are those of ``checkKernel`` (``kernelPaths``): the NumPy reference, the CUDA text compiled for the host,
and CuPy's ReductionKernel on a GPU or the simulated device. They reduce in different orders (the host's 8 partial
accumulators, CuPy's tree, NumPy's pairwise sums), so sums are compared within a bound the test states from the
maths, not bit for bit; NaN positions and infinities are compared exactly.
"""

import numpy
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import backend
from minidl.backend.reduction import Reduction, registry
from minidl.errors import TestingError
from minidl.testing.compare import assertMatches
from minidl.testing.kernels import importPackage, kernelPaths
from minidl.testing.strategies import arrays, floatDtypes, shapes


def _copies(args):
    return [arg.copy() if isinstance(arg, numpy.ndarray) else arg for arg in args]


def runReduction(path, kernel, args, axis=None, keepdims=False):
    """Run ``kernel`` on copies of ``args`` (NumPy arrays and scalars) on ``path`` ("numpy", "host" or "cupy");
    return its outputs as NumPy arrays, in the order the kernel declares them."""
    args = _copies(args)
    if path == "numpy":
        with numpy.errstate(all="ignore"):  # NaN and infinities are drawn on purpose
            kernel.callNumpy(*args, axis=axis, keepdims=keepdims)
    elif path == "host":
        kernel.callCompiled(*args, axis=axis, keepdims=keepdims)
    elif path == "cupy":
        if not backend.isGpu:
            raise TestingError("the cupy path needs a GPU, and minidl found none")
        args = [backend.toDevice(arg) if isinstance(arg, numpy.ndarray) else arg for arg in args]
        kernel(*args, axis=axis, keepdims=keepdims)
        args = [backend.toHost(arg) if isinstance(arg, backend.xp.ndarray) else arg for arg in args]
    else:
        raise TestingError(f"path must be 'numpy', 'host' or 'cupy', got {path!r}")
    return [arg for param, arg in zip(kernel.params, args) if param.isOutput]


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
        elif fixed.kind == "f":
            args.append(float(fixed.type(draw(st.floats(low, high)))))
        elif fixed.kind in "iu":
            args.append(draw(st.integers(0, 8)))
        else:
            args.append(draw(st.booleans()))
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
    nan = None
    for param, arg in zip(kernel.params, args):
        if not param.isOutput and not param.raw and isinstance(arg, numpy.ndarray) and arg.dtype.kind == "f":
            nan = numpy.isnan(arg) if nan is None else nan | numpy.isnan(arg)
    if nan is None or not nan.any():
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
    reference = runReduction("numpy", kernel, args, axis, keepdims)
    stated = None if bounds is None else bounds(*_copies(args), axis=axis, keepdims=keepdims)
    for path in kernelPaths():
        _compare(runReduction(path, kernel, args, axis, keepdims), reference, dtype,
                 f"{kernel.name} on {path} against its NumPy reference", signedZeros, tolerances, stated)
    if oracle is not None:
        wide = [arg.astype(numpy.float64) if isinstance(arg, numpy.ndarray) and arg.dtype.kind == "f" else arg
                for arg in _copies(args)]
        with numpy.errstate(all="ignore"):
            expected = oracle(*wide, axis=axis, keepdims=keepdims)
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
    raw = [param.name for param in kernel.params if param.raw]
    if cases is None and raw:
        raise TestingError(f"{kernel.name} has raw parameters ({', '.join(raw)}): pass checkReduction a strategy of "
                           f"cases")
    strategy = cases if cases is not None else reductionCases(kernel)

    @given(case=strategy)
    def check(case):
        dtype, args, axis, keepdims = case
        checkReductionCase(kernel, dtype, args, axis, keepdims, oracle, signedZeros, nanPropagates, tolerances,
                           bounds)

    check = (hypothesisSettings if hypothesisSettings is not None else settings(deadline=None))(check)
    check()


def packageReductions():
    """Every Reduction minidl defines (``importPackage``)."""
    importPackage()
    return [kernel for kernel in registry if getattr(kernel.reference, "__module__", "").startswith("minidl.")]
