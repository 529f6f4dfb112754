"""The Elementwise kernel type: dispatch, returned outputs, and argument checks that run before anything."""

import numpy
import pytest

from minidl import BackendError
from minidl.backend import Elementwise


def _axpyNumpy(x, a, y):
    y += a * x


axpy = Elementwise("test_axpy", "T x, float32 a", "T y", "y += a * x", _axpyNumpy)
gather = Elementwise(
    "test_gather", "raw T table, int32 index", "T y", "y = table[index]", lambda table, index, y: y.fill(table[index])
)


def test_runs_the_reference_in_place_and_returns_the_output():
    x, y = numpy.arange(4, dtype=numpy.float32), numpy.ones(4, numpy.float32)
    assert axpy(x, 2.0, y) is y
    numpy.testing.assert_array_equal(y, [1, 3, 5, 7])


def test_scalars_reach_the_reference_with_their_declared_dtype():
    seen = {}
    kernel = Elementwise("test_types", "T x, float32 a, T b", "T y", "y = x", lambda x, a, b, y: seen.update(a=a, b=b))
    kernel.callNumpy(numpy.ones(2), 1, 2, numpy.ones(2))
    assert type(seen["a"]) is numpy.float32 and type(seen["b"]) is numpy.float64


def test_raw_arrays_may_have_another_shape():
    y = numpy.zeros(3, numpy.float64)
    gather(numpy.array([5.0, 6.0]), 1, y)
    numpy.testing.assert_array_equal(y, [6, 6, 6])


@pytest.mark.parametrize("args, message", [
    ((numpy.ones(3, numpy.float32), 1.0), "takes 3 arguments"),
    ((numpy.ones(3, numpy.float32), 1.0, numpy.ones(4, numpy.float32)), r"one shape, got x \(3,\), y \(4,\)"),
    ((numpy.ones(3, numpy.float64), 1.0, numpy.ones(3, numpy.float32)), "mixed dtypes for type T"),
    ((numpy.ones(3, numpy.float32), 1.0, 5.0), "output argument y must be an array"),
    ((numpy.ones(3, numpy.float32), "a", numpy.ones(3, numpy.float32)), "array or a scalar"),
    ((numpy.ones((3, 2), numpy.float32).T, 1.0, numpy.ones((2, 3), numpy.float32)), "C-contiguous"),
])
def test_bad_arguments_raise_and_change_nothing(args, message):
    outputs = [arg.copy() for arg in args if isinstance(arg, numpy.ndarray)]
    with pytest.raises(BackendError, match=message):
        axpy(*args)
    for before, after in zip(outputs, [arg for arg in args if isinstance(arg, numpy.ndarray)]):
        numpy.testing.assert_array_equal(before, after)


def test_fixed_dtype_arrays_are_checked():
    with pytest.raises(BackendError, match="index must be int32, got int64"):
        Elementwise("test_fixed", "int32 index", "T y", "y = index", lambda i, y: None)(
            numpy.zeros(2, numpy.int64), numpy.zeros(2))


def test_read_only_outputs_are_refused():
    y = numpy.ones(2, numpy.float32)
    y.flags.writeable = False
    with pytest.raises(BackendError, match="read-only"):
        axpy(numpy.ones(2, numpy.float32), 1.0, y)


def test_a_scalar_placeholder_must_be_bound_by_an_array():
    kernel = Elementwise("test_unbound", "U s, T x", "T y", "y = x", lambda s, x, y: None)
    with pytest.raises(BackendError, match="not bound"):
        kernel(1.0, numpy.ones(2), numpy.ones(2))


@pytest.mark.parametrize("params", ["T", "T x y", "raw", "T 1x"])
def test_malformed_declarations_are_refused(params):
    with pytest.raises(BackendError, match="cannot parse"):
        Elementwise("test_bad", params, "T y", "y = 0", lambda *a: None)


@pytest.mark.parametrize("params", ["Tx x", "float x", "f4 x", "raw int x"])
def test_types_are_dtype_names_or_one_letter_placeholders_as_in_cupy(params):
    with pytest.raises(BackendError, match="must be a dtype name .* or a one-letter placeholder"):
        Elementwise("test_bad_type", params, "T y", "y = 0", lambda *a: None)


@pytest.mark.parametrize("name", ["test-kernel", "1kernel", "test kernel", "../kernel", "tést"])
def test_kernel_names_are_c_identifiers(name):
    with pytest.raises(BackendError, match="must be a C identifier"):
        Elementwise(name, "T x", "T y", "y = x", lambda *a: None)


def test_a_kernel_needs_an_output_and_distinct_names():
    with pytest.raises(BackendError, match="no output"):
        Elementwise("test_no_out", "T x", "", "", lambda x: None)
    with pytest.raises(BackendError, match="twice"):
        Elementwise("test_twice", "T x", "T x", "", lambda x, y: None)


counted = Elementwise("test_counted", "T x, int32 n, uint8 k", "T y", "y = x * n + k", lambda x, n, k, y: None)


@pytest.mark.parametrize("n, k, message", [
    (2**40, 0, r"scalar n does not fit int32: 1099511627776"),
    (float("nan"), 0, "scalar n does not fit int32: nan"),
    (1, -1, "scalar k does not fit uint8: -1"),
    (numpy.int64(2**40), 0, r"scalar n does not fit int32: np.int64\(1099511627776\)"),  # NumPy's cast wraps it
    (numpy.float64("nan"), 0, r"scalar n does not fit int32: np.float64\(nan\)"),
    (1, numpy.int64(-1), r"scalar k does not fit uint8: np.int64\(-1\)"),
    (numpy.complex128(1 + 2j), 0, r"argument n must be an array or a scalar \(a real number\), got complex128"),
    (1, numpy.str_("1"), r"argument k must be an array or a scalar \(a real number\), got str_"),
])
def test_scalars_that_do_not_fit_their_type_are_refused(n, k, message):
    y = numpy.ones(2)
    with pytest.raises(BackendError, match=message):
        counted(numpy.ones(2), n, k, y)
    numpy.testing.assert_array_equal(y, 1.0)


@pytest.mark.parametrize("path", ["callNumpy", "callCompiled"])
def test_a_kernel_of_raw_arrays_only_runs_over_the_size_it_is_given(path):
    kernel = Elementwise("test_copy_head", "raw T values", "raw T out", "out[i] = values[i]",
                         lambda values, out: out.__setitem__(slice(None, 3), values[:3]))
    out = numpy.zeros(5)
    getattr(kernel, path)(numpy.arange(1.0, 6.0), out, size=3)
    numpy.testing.assert_array_equal(out, [1, 2, 3, 0, 0])


@pytest.mark.parametrize("args, size, message", [
    ((numpy.ones(3), numpy.ones(3)), None, "loop's size is undecided: give it as size="),
    ((numpy.ones(3), numpy.ones(3)), -1, "size must be an int >= 0"),
    ((numpy.ones(3), numpy.ones(3)), 2.0, "size must be an int >= 0"),
    ((numpy.ones(3), numpy.ones(3)), True, "size must be an int >= 0"),
])
def test_a_bad_size_is_refused_before_anything_runs(args, size, message):
    out = args[1]
    with pytest.raises(BackendError, match=message):
        Elementwise("test_raw_copy", "raw T values", "raw T out", "out[i] = values[i]",
                    lambda values, out: out.fill(7))(*args, size=size)
    numpy.testing.assert_array_equal(out, 1)


def test_size_is_refused_where_a_non_raw_array_sets_the_loop():
    y = numpy.ones(4, numpy.float32)
    with pytest.raises(BackendError, match="size is given only when every array is raw"):
        axpy(numpy.ones(4, numpy.float32), 2.0, y, size=4)
    numpy.testing.assert_array_equal(y, 1)


@pytest.mark.parametrize("grain", [4, "", " "])
def test_grain_must_be_a_c_expression(grain):
    with pytest.raises(BackendError, match="grain must be a C expression"):
        Elementwise("test_parallel", "T x", "T y", "y = x", lambda x, y: None, grain=grain)
