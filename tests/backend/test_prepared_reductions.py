"""A Reduction's compiled calls after the first with an axis, keepdims, argument types and arrays' dtypes and shapes
take its prepared call (hostkernel.PreparedCall): the same bits as a call that took the full checks; whatever
differs takes the full checks, so every error is the one a first call raises, before anything changes. Oracles:
the same kernel's unprepared calls (a fresh kernel of the same text), NumPy float64 formulas."""

import numpy
import pytest

from minidl import BackendError
from minidl.backend import Reduction, hostkernel

# A call takes the compiled path (and prepares) through callCompiled always, through __call__ unless
# MINIDL_CPU_KERNELS=numpy runs every kernel's reference (these kernels have none)
PATHS = ["callCompiled", pytest.param("__call__", marks=pytest.mark.skipif(
    hostkernel.cpuKernels() == "numpy", reason="MINIDL_CPU_KERNELS=numpy: __call__ runs the references"))]


def scaledSums():
    """A fresh kernel (nothing prepared): y = n Σ (x - centre)² + offset over the axes, centre of the output's shape
    (read once per output), an int32 and a T scalar."""
    return Reduction("test_prepared_scaled_sums", "T x, T centre, int32 n, T offset", "T y",
                     "(x - centre) * (x - centre)", "a + b", "y = (T)n * a + offset", "0", None)


def weightedSums():
    """A fresh kernel with a raw input: y = Σ_j x[j, ...] w[j] over the leading axis."""
    return Reduction("test_prepared_weighted", "T x, raw T w", "T y", "x * w[_J]", "a + b", "y = a", "0", None)


def noFullChecks(kernel, args, axis=None, keepdims=False):
    raise AssertionError("a prepared call took the full checks")


def calls():
    """(kernel maker, args, options) of calls whose later repeats are prepared, values drawn with NaN and inf."""
    rng = numpy.random.default_rng(5)

    def data(*shape, dtype=numpy.float32):
        values = rng.standard_normal(shape).astype(dtype)
        values.reshape(-1)[::7] = numpy.inf
        values.reshape(-1)[3::11] = numpy.nan
        return values

    return [
        (scaledSums, (data(6, 5, 4), data(1, 5, 1), 3, 0.25, numpy.zeros(5, numpy.float32)), {"axis": (0, 2)}),
        (scaledSums, (data(6, 5, 4), data(6, 5, 1), -2, 1.5, numpy.zeros((6, 5, 1), numpy.float32)),
         {"axis": 2, "keepdims": True}),
        (scaledSums, (data(3, 40, dtype=numpy.float64), numpy.zeros((1, 1), numpy.float64), 1, 0.0,
                      numpy.zeros((), numpy.float64)), {"axis": None}),
        (weightedSums, (data(7, 3), data(7), numpy.zeros(3, numpy.float32)), {"axis": 0}),
    ]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", range(4))
def test_later_calls_skip_the_full_checks_and_give_the_bits_of_an_unprepared_call(path, case, monkeypatch):
    make, args, options = calls()[case]
    kernel = make()
    getattr(kernel, path)(*args, **options)  # prepares
    monkeypatch.setattr(Reduction, "checkArgs", noFullChecks)
    rng = numpy.random.default_rng(case)
    for n in (1, 4, -3):
        fresh = [rng.standard_normal(arg.shape).astype(arg.dtype) if isinstance(arg, numpy.ndarray) else arg
                 for arg in args]
        if make is scaledSums:
            fresh[2], fresh[-1] = n, numpy.full_like(args[-1], 9)
        got = getattr(kernel, path)(*fresh, **options)
        assert got is fresh[-1]
        monkeypatch.undo()
        expected = make().callCompiled(*[arg.copy() if isinstance(arg, numpy.ndarray) else arg for arg in fresh],
                                       **options)
        monkeypatch.setattr(Reduction, "checkArgs", noFullChecks)
        assert got.tobytes() == expected.tobytes()  # the same bits
    if make is scaledSums:
        x, centre, n, offset, y = fresh
        want = n * ((x.astype(numpy.float64) - centre) ** 2).sum(axis=options["axis"],
                                                                   keepdims=options.get("keepdims", False)) + offset
        numpy.testing.assert_allclose(y, want, rtol=1e-5)


def test_each_shape_of_a_signature_keeps_its_own_prepared_call(monkeypatch):
    kernel = scaledSums()
    shapes = [((8, 3, 5), (0, 2)), ((2, 4, 6), (0, 2)), ((8, 3, 5), (0, 1))]

    def call(shape, axis, n):
        kept = tuple(1 if index in axis else side for index, side in enumerate(shape))
        out = numpy.zeros([side for index, side in enumerate(shape) if index not in axis], numpy.float32)
        return kernel.callCompiled(numpy.ones(shape, numpy.float32), numpy.zeros(kept, numpy.float32), n, 0.5, out,
                                   axis=axis)

    for shape, axis in shapes:
        call(shape, axis, 1)
    monkeypatch.setattr(Reduction, "checkArgs", noFullChecks)
    for _ in range(2):
        for shape, axis in shapes:
            y = call(shape, axis, 2)
            numpy.testing.assert_array_equal(y, 2 * numpy.prod(shape) / y.size + 0.5)


X = numpy.ones((3, 4), numpy.float32)
C = numpy.zeros((3, 1), numpy.float32)
Y = numpy.zeros(3, numpy.float32)


def transposed():
    return numpy.ones((4, 3), numpy.float32).T  # (3, 4), as X, but not C-contiguous


def strided():
    return numpy.zeros(6, numpy.float32)[::2]  # (3,), as Y, but not C-contiguous


def readOnly():
    y = numpy.zeros(3, numpy.float32)
    y.flags.writeable = False
    return y


# A later call with one thing changed from the prepared (X, C, 2, 0.5, Y, axis=1): (args, options)
CHANGES = {
    "an input not contiguous": lambda: ((transposed(), C, 2, 0.5, Y.copy()), {"axis": 1}),
    "an output not contiguous": lambda: ((X, C, 2, 0.5, strided()), {"axis": 1}),
    "a read-only output": lambda: ((X, C, 2, 0.5, readOnly()), {"axis": 1}),
    "an int scalar that does not fit": lambda: ((X, C, 2**40, 0.5, Y.copy()), {"axis": 1}),
    "a NaN for an int scalar": lambda: ((X, C, float("nan"), 0.5, Y.copy()), {"axis": 1}),
    "another input dtype": lambda: ((X.astype(numpy.float64), C, 2, 0.5, Y.copy()), {"axis": 1}),
    "another output dtype": lambda: ((X, C, 2, 0.5, Y.astype(numpy.float64)), {"axis": 1}),
    "a byte-swapped input": lambda: ((X.astype(">f4"), C, 2, 0.5, Y.copy()), {"axis": 1}),
    "an output of another shape": lambda: ((X, C, 2, 0.5, numpy.zeros(4, numpy.float32)), {"axis": 1}),
    "an input of another shape": lambda: ((X, numpy.zeros((2, 1), numpy.float32), 2, 0.5, Y.copy()),
                                          {"axis": 1}),
    "a list for an array": lambda: (([[1.0] * 4] * 3, C, 2, 0.5, Y.copy()), {"axis": 1}),
    "an array for a scalar": lambda: ((X, C, numpy.ones(3, numpy.int32), 0.5, Y.copy()), {"axis": 1}),
    "an argument short": lambda: ((X, C, 2, Y.copy()), {"axis": 1}),
    "an axis out of range": lambda: ((X, C, 2, 0.5, Y.copy()), {"axis": 2}),
    "a float axis": lambda: ((X, C, 2, 0.5, Y.copy()), {"axis": 1.0}),
    "a bool axis": lambda: ((X, C, 2, 0.5, Y.copy()), {"axis": True}),
    "an int keepdims": lambda: ((X, C, 2, 0.5, Y.copy()), {"axis": 1, "keepdims": 1}),
}


def firstCallsError(args, options):
    """The message a kernel with nothing prepared raises for these arguments."""
    with pytest.raises(BackendError) as raised:
        scaledSums().callCompiled(*args, **options)
    return str(raised.value)


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("path", PATHS)
def test_what_differs_raises_the_first_calls_error_and_changes_nothing(path, change):
    kernel = scaledSums()
    for _ in range(2):  # the second call is a prepared one
        numpy.testing.assert_array_equal(getattr(kernel, path)(X, C, 2, 0.5, y := Y.copy(), axis=1), [8.5] * 3)
    args, options = CHANGES[change]()
    expected = firstCallsError(*CHANGES[change]())
    arrays = [arg for arg in args if isinstance(arg, numpy.ndarray)]
    before = [arg.copy() for arg in arrays]
    with pytest.raises(BackendError) as raised:
        getattr(kernel, path)(*args, **options)
    assert str(raised.value) == expected
    for copy, arg in zip(before, arrays):
        numpy.testing.assert_array_equal(copy, arg)
    numpy.testing.assert_array_equal(getattr(kernel, path)(X, C, 2, 0.5, y, axis=1), [8.5] * 3)  # still prepared
