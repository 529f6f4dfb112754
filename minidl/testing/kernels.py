"""``checkKernel``: an Elementwise kernel's paths held to each other and to a float64 oracle, over hypothesis draws.

The paths of a kernel on NumPy arrays are its NumPy reference and its CUDA text compiled for the host; with a
GPU, CuPy runs the CUDA text too. Each path runs on copies of one drawn case, so every path sees the same inputs.
"""

import contextlib
import importlib
import pkgutil

import numpy
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl import backend
from minidl.backend.elementwise import Elementwise, registry
from minidl.errors import TestingError
from minidl.testing.compare import assertMatches
from minidl.testing.strategies import arrays, floatDtypes, shapes

_only = []  # the paths ``onlyPaths`` keeps checkKernel to, innermost last


def kernelPaths():
    """The paths checked against the NumPy reference here: "host" always, and "cupy" on a GPU or the simulated
    device (its CUDA text launched as CuPy launches it); inside ``onlyPaths(paths)``, those of them it names."""
    paths = ["host", "cupy"] if backend.isGpu else ["host"]
    return [path for path in paths if path in _only[-1]] if _only else paths


@contextlib.contextmanager
def onlyPaths(paths):
    """Keep ``checkKernel`` to ``paths`` (of "host", "cupy") inside the block: a test suite runs each path as a
    test of its own, so its report shows the device path, run or skipped, beside the host one."""
    _only.append(tuple(paths))
    try:
        yield
    finally:
        _only.pop()


def copies(args):
    return [arg.copy() if isinstance(arg, numpy.ndarray) else arg for arg in args]


def wideCopies(args):
    """Copies of ``args`` with every floating array widened to float64 (what a float64 oracle is given)."""
    return [arg.astype(numpy.float64) if isinstance(arg, numpy.ndarray) and arg.dtype.kind == "f" else arg
            for arg in copies(args)]


def runPath(path, kernel, args, size=None, **reduction):
    """Run ``kernel`` (an Elementwise, or a Reduction with its ``axis=`` and ``keepdims=``) on copies of ``args``
    (NumPy arrays and scalars) on ``path`` ("numpy", "host" or "cupy"), over ``size`` elements when every array of
    an Elementwise is raw; return its outputs as NumPy arrays, in the order the kernel declares them."""
    args = copies(args)
    call = reduction if reduction else {"size": size}
    if path == "numpy":
        with numpy.errstate(all="ignore"):  # NaN and infinities are drawn on purpose
            kernel.callNumpy(*args, **call)
    elif path == "host":
        kernel.callCompiled(*args, **call)
    elif path == "cupy":
        if not backend.isGpu:
            raise TestingError("the cupy path needs a GPU, and minidl found none")
        args = [backend.toDevice(arg) if isinstance(arg, numpy.ndarray) else arg for arg in args]
        kernel(*args, **call)
        args = [backend.toHost(arg) if isinstance(arg, backend.xp.ndarray) else arg for arg in args]
    else:
        raise TestingError(f"path must be 'numpy', 'host' or 'cupy', got {path!r}")
    return [arg for param, arg in zip(kernel.params, args) if param.isOutput]


def drawScalar(draw, dtype, low, high):
    """A hyperparameter of a fixed dtype: a float in [low, high] (rounded to the dtype), a count in [0, 8], a bool."""
    if dtype.kind == "f":
        return float(dtype.type(draw(st.floats(low, high))))
    if dtype.kind in "iu":
        return draw(st.integers(0, 8))
    return draw(st.booleans())


@st.composite
def signatureCases(draw, kernel, dtypes=None, low=-4.0, high=4.0):
    """(dtype, args) for a kernel without raw parameters, from its signature alone: one dtype drawn for every
    placeholder, arrays of one drawn shape for placeholder-typed parameters and outputs, scalars in [low, high]
    for inputs of a fixed type (hyperparameters)."""
    dtype = numpy.dtype(draw(dtypes if dtypes is not None else floatDtypes()))
    shape = draw(shapes())
    args = []
    for param in kernel.params:
        fixed = param.dtype
        if param.isOutput or fixed is None:
            args.append(draw(arrays(fixed or dtype, shape, low, high)))
        else:
            args.append(drawScalar(draw, fixed, low, high))
    return dtype, args


def nanInputs(kernel, args):
    """Where any elementwise (non-raw) floating input holds NaN, or None when none does."""
    nan = None
    for param, arg in zip(kernel.params, args):
        if not param.isOutput and not param.raw and isinstance(arg, numpy.ndarray) and arg.dtype.kind == "f":
            nan = numpy.isnan(arg) if nan is None else nan | numpy.isnan(arg)
    return nan if nan is not None and nan.any() else None


def _checkNanPropagates(kernel, args, outputs):
    """Where an elementwise (non-raw) floating input holds NaN, every elementwise floating output is NaN."""
    nan = nanInputs(kernel, args)
    if nan is None:
        return
    elementwise = [param for param in kernel.params if param.isOutput and not param.raw]
    for param, output in zip([param for param in kernel.params if param.isOutput], outputs):
        if param in elementwise and output.dtype.kind == "f":
            lost = nan & ~numpy.isnan(output)
            assert not lost.any(), (
                f"{kernel.name}: output {param.name} drops NaN from its inputs at "
                f"{[tuple(int(i) for i in index) for index in numpy.argwhere(lost)[:3]]}: got {output[lost][:3]}"
            )


def checkCase(kernel, dtype, args, oracle=None, signedZeros=True, nanPropagates=True, tolerances=None, size=None):
    """Check one case: every other path against the NumPy reference (NaN positions, infinities and, with
    ``signedZeros``, the signs of zeros exactly; other values within ``tolerances``), the reference against
    ``oracle`` when given (NaN positions and infinities exactly), and with ``nanPropagates`` that a NaN in an
    elementwise input reaches every elementwise output at its position. ``size(args)``: the loop's size of a
    kernel whose arrays are all raw."""
    size = None if size is None else size(args)
    reference = runPath("numpy", kernel, args, size)
    for path in kernelPaths():
        assertMatches(runPath(path, kernel, args, size), reference, dtype,
                      f"{kernel.name} on {path} against its NumPy reference", signedZeros, tolerances)
    if oracle is not None:
        with numpy.errstate(all="ignore"):
            expected = oracle(*wideCopies(args))
        assertMatches(reference, expected, dtype, f"{kernel.name}'s NumPy reference against the float64 oracle",
                      tolerances=tolerances)
    if nanPropagates:
        _checkNanPropagates(kernel, args, reference)


def checkKernel(kernel, cases=None, oracle=None, *, signedZeros=True, nanPropagates=True, tolerances=None,
                hypothesisSettings=None, size=None):
    """Property-test an ``Elementwise`` kernel on every path that can run here; raise AssertionError (with the
    failing case, as hypothesis reports it) at the first disagreement.

    - ``cases``: a hypothesis strategy of ``(dtype, args)``: ``args`` the kernel's arguments in order (NumPy
      arrays and scalars), ``dtype`` the one that sets the tolerances. Build it with ``arrays`` (values include
      NaN, ±inf, -0.0 and subnormals unless ``specials=False``), ``shapes`` and ``floatDtypes``. Without it,
      cases come from the signature alone (kernels without raw parameters): float32 or float64 arrays of one
      shape for placeholder-typed parameters and outputs, scalars in [-4, 4] for inputs of a fixed type.
    - ``oracle(*args)``: the expected outputs, a list of arrays in the order the kernel declares its outputs,
      computed in float64 from float64 copies of the arrays (so it may not change them). It must treat NaN and
      infinities as the kernel should: ``numpy.where(x > 0, x, 0)`` is not ``relu`` at NaN.
    - The NumPy reference is compared with the oracle; the host-compiled CUDA text, and CuPy on a GPU, are
      compared with the reference: the same NaN positions, the same infinities, zeros of the same sign (unless
      ``signedZeros=False``), the rest within ``tolerances`` ((rtol, atol); by default ``TOLERANCES[dtype]``).
    - ``nanPropagates``: a NaN in an elementwise (non-raw) floating input must give NaN at its position in every
      elementwise floating output, as IEEE arithmetic does; pass False for a kernel that selects instead.
    - ``size(args)``: the loop's size, for a kernel whose arrays are all raw (it is the ``size=`` of its calls).
    - ``hypothesisSettings``: a ``hypothesis.settings`` for this check (the number of cases, say); by default the
      current hypothesis profile's, without a deadline (a case that compiles the kernel takes seconds).

    Example::

        checkKernel(axpyKer, oracle=lambda x, a, y: [y + a * x])
    """
    if not isinstance(kernel, Elementwise):
        raise TestingError(f"checkKernel checks an Elementwise kernel, got {kernel!r}")
    checkProperty("checkKernel", kernel, cases, signatureCases, hypothesisSettings,
                  lambda dtype, args: checkCase(kernel, dtype, args, oracle, signedZeros, nanPropagates, tolerances,
                                                size))


def checkProperty(checker, kernel, cases, defaultCases, hypothesisSettings, checkOne):
    """Run ``checkOne(*case)`` on the cases hypothesis draws from ``cases``, or from ``defaultCases(kernel)`` (the
    kernel's signature) when it has no raw parameter, whose shapes are the kernel's own to define; with
    ``hypothesisSettings``, or no deadline by default: the first case of each dtype compiles the kernel for the
    host."""
    raw = [param.name for param in kernel.params if param.raw]
    if cases is None and raw:
        raise TestingError(f"{kernel.name} has raw parameters ({', '.join(raw)}): their shapes are the kernel's own "
                           f"to define, so pass {checker} a strategy of cases")

    @given(case=cases if cases is not None else defaultCases(kernel))
    def check(case):
        checkOne(*case)

    (hypothesisSettings if hypothesisSettings is not None else settings(deadline=None))(check)()


def importPackage():
    """Import all of minidl's modules (but ``__main__``, a command, and those needing an optional dependency that
    is not installed: their kernels cannot run here), so that every kernel it defines is registered."""
    for module in pkgutil.walk_packages(minidl.__path__, "minidl."):
        if module.name.endswith(".__main__"):
            continue
        try:
            importlib.import_module(module.name)
        except ModuleNotFoundError as error:
            if (error.name or "minidl").split(".")[0] == "minidl":
                raise


def packageKernels():
    """Every Elementwise kernel minidl defines (``importPackage``)."""
    importPackage()
    return [kernel for kernel in registry if kernel.reference.__module__.startswith("minidl.")]
