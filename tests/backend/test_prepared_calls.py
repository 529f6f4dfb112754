"""Compiled kernel calls after the first of a signature take its prepared call (hostkernel.PreparedCall): one
pass over the arrays, scalars converted only when they change; whatever differs takes the full checks, so
every error is the one the first call would have raised, before anything changes. Oracles: NumPy formulas."""

import numpy
import pytest

from minidl import BackendError
from minidl.backend import Elementwise

scaled = Elementwise("test_scaled", "T x, int32 n, float32 a", "T y", "y = x * n + a", lambda x, n, a, y: None)
gather = Elementwise("test_gather_rows", "raw T table, int32 row", "T y", "y = table[{row, (int)i}]",
                     lambda table, row, y: None)
rawCopy = Elementwise("test_raw_head", "raw T values", "raw T out", "out[i] = values[i]", lambda values, out: None)


def prepare(path):
    """A kernel whose float32 call with int and float scalars is prepared, and the arrays of that call."""
    x, y = numpy.arange(4, dtype=numpy.float32), numpy.zeros(4, numpy.float32)
    getattr(scaled, path)(x, 2, 0.5, y)
    numpy.testing.assert_array_equal(y, x * 2 + 0.5)
    return x, y


def noFullChecks(kernel, args, size=None):
    raise AssertionError("a prepared call took the full checks")


@pytest.mark.parametrize("path", ["__call__", "callCompiled"])
def test_later_calls_of_a_signature_skip_the_full_checks_and_see_new_values(path, monkeypatch):
    x, y = prepare(path)
    monkeypatch.setattr(Elementwise, "checkArgs", noFullChecks)
    for n, a, size in [(3, 0.25, 4), (3, 0.25, 7), (-1, 1e30, 1), (0, -0.0, 5)]:
        x, y = numpy.linspace(-2, 2, size, dtype=numpy.float32), numpy.full(size, 9, numpy.float32)
        assert getattr(scaled, path)(x, n, a, y) is y
        numpy.testing.assert_array_equal(y, x * numpy.float32(n) + numpy.float32(a))
    table = numpy.arange(12, dtype=numpy.float32).reshape(3, 4)
    monkeypatch.undo()
    gather(table, 2, y := numpy.zeros(4, numpy.float32))
    monkeypatch.setattr(Elementwise, "checkArgs", noFullChecks)
    wider = numpy.arange(20, dtype=numpy.float32).reshape(2, 10)
    numpy.testing.assert_array_equal(gather(wider, 1, y), wider[1, :4])  # a raw array's shape travels per call


def test_another_dtype_or_a_0d_loop_is_a_signature_of_its_own():
    for dtype in (numpy.float32, numpy.float64, numpy.float32, numpy.float16, numpy.float64):
        x, y = numpy.arange(3, dtype=dtype), numpy.zeros(3, dtype)
        numpy.testing.assert_array_equal(scaled(x, 2, 1.0, y), numpy.arange(3) * 2 + 1)
    mixed = numpy.arange(3, dtype=numpy.float64)  # the output's dtype keys the prepared call; this x's is checked
    with pytest.raises(BackendError, match="mixed dtypes for type T: x float64, y float32"):
        scaled(mixed, 2, 1.0, numpy.zeros(3, numpy.float32))
    zero = numpy.zeros((), numpy.float32)
    numpy.testing.assert_array_equal(scaled(numpy.ones((), numpy.float32), 2, 1.0, zero), 3.0)
    numpy.testing.assert_array_equal(scaled(numpy.ones(1, numpy.float32), 2, 1.0, y := numpy.zeros(1, numpy.float32)),
                                     [3.0])


def test_a_0d_loops_later_calls_are_prepared_too(monkeypatch):
    """A loop over 0-d arrays (one element: a cost's mean) takes its prepared call like any other: NumPy keeps no
    shape for a 0-d array, which the one pass once took for no array seen, refusing every call to the full checks
    (27 µs a call against 1.8)."""
    scaled(numpy.ones((), numpy.float32), 2, 1.0, numpy.zeros((), numpy.float32))
    monkeypatch.setattr(Elementwise, "checkArgs", noFullChecks)
    for value in (3.0, -0.5):
        x, y = numpy.array(value, numpy.float32), numpy.zeros((), numpy.float32)
        assert scaled(x, 2, 1.0, y) is y
        assert y == numpy.float32(value * 2 + 1)


@pytest.mark.parametrize("change, message", [
    (lambda x, y: ((x, 2, 0.5, numpy.zeros(5, numpy.float32)), {}), r"one shape, got x \(4,\), y \(5,\)"),
    (lambda x, y: ((x.astype(numpy.float64), 2, 0.5, y), {}), "mixed dtypes for type T"),
    (lambda x, y: ((numpy.ones((4, 2), numpy.float32).T, 2, 0.5, numpy.zeros((2, 4), numpy.float32)), {}),
     "array x must be C-contiguous"),
    (lambda x, y: ((x, 2, 0.5, y[::2]), {}), "array y must be C-contiguous"),
    (lambda x, y: ((x, 2**40, 0.5, y), {}), "scalar n does not fit int32: 1099511627776"),
    (lambda x, y: ((x, float("nan"), 0.5, y), {}), "scalar n does not fit int32: nan"),
    (lambda x, y: ((x, numpy.int64(2**40), 0.5, y), {}), r"scalar n does not fit int32: np.int64\(1099511627776\)"),
    (lambda x, y: ((x, numpy.float64("nan"), 0.5, y), {}), r"scalar n does not fit int32: np.float64\(nan\)"),
    (lambda x, y: ((x, 2, 0.5, y), {"size": 4}), "size is given only when every array is raw"),
    (lambda x, y: ((x, 2, 0.5), {}), "takes 4 arguments"),
])
@pytest.mark.parametrize("path", ["__call__", "callCompiled"])
def test_what_differs_raises_the_first_calls_error_and_changes_nothing(path, change, message):
    x, y = prepare(path)
    args, keywords = change(x, y)
    before = [arg.copy() for arg in args if isinstance(arg, numpy.ndarray)]
    with pytest.raises(BackendError, match=message):
        getattr(scaled, path)(*args, **keywords)
    for copy, arg in zip(before, [arg for arg in args if isinstance(arg, numpy.ndarray)]):
        numpy.testing.assert_array_equal(copy, arg)


def test_a_read_only_output_is_refused_after_a_prepared_call():
    x, y = prepare("__call__")
    y.flags.writeable = False
    with pytest.raises(BackendError, match="output y is read-only"):
        scaled(x, 2, 0.5, y)


@pytest.mark.parametrize("size, message", [
    (None, "loop's size is undecided: give it as size="),
    (-1, "size must be an int >= 0"),
    (True, "size must be an int >= 0"),
    (2.0, "size must be an int >= 0"),
])
def test_a_raw_loop_checks_its_size_on_every_call(size, message):
    out = numpy.zeros(5)
    numpy.testing.assert_array_equal(rawCopy(numpy.arange(1.0, 6.0), out, size=3), [1, 2, 3, 0, 0])
    numpy.testing.assert_array_equal(rawCopy(numpy.arange(1.0, 6.0), out, size=4), [1, 2, 3, 4, 0])
    with pytest.raises(BackendError, match=message):
        rawCopy(numpy.full(5, 7.0), out, size=size)
    numpy.testing.assert_array_equal(out, [1, 2, 3, 4, 0])
