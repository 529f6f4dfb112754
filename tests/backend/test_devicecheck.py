"""Checks of device values read at stated points (RangeCheck, ValueCheck, readChecks) and DeviceScalar: the range
and value kernels on every path, the CPU's immediate error, and a device scalar that behaves as the float it holds."""

import math

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import backend
from minidl.backend import RangeCheck, ValueCheck, readChecks, toDevice, xp
from minidl.backend.devicecheck import rangeKer, valueKer
from minidl.backend.devicescalar import DeviceScalar
from minidl.testing import kernelPaths, runPath


class Refused(Exception):
    pass


def fail(low, high, bound):
    raise Refused(low, high, bound)


@given(batches=st.lists(st.tuples(st.integers(-3, 9), st.integers(-3, 9)), min_size=1, max_size=5),
       bound=st.integers(1, 6), dtype=st.sampled_from([numpy.int32, numpy.int64]))
def test_the_range_kernel_keeps_the_first_batch_out_of_range_on_every_path(batches, bound, dtype):
    expected = [0, 0, 0, 0]
    for low, high in batches:
        if (low < 0 or high >= bound) and not expected[0]:
            expected = [1, low, high, bound]
    for path in ["numpy", *kernelPaths()]:
        record = numpy.zeros(4, numpy.int64)
        for low, high in batches:
            record = runPath(path, rangeKer, [numpy.array([low], dtype), numpy.array([high], dtype), bound, record],
                             size=1)[0]
        assert record.tolist() == expected, path


def test_a_range_check_raises_at_the_call_on_the_cpu_and_at_the_read_on_a_gpu():
    check = RangeCheck(fail)
    check.note(toDevice(numpy.array([0, 3, 1])), 4)
    readChecks()
    if not backend.isGpu:
        with pytest.raises(Refused, match=r"\(-2, 1, 4\)"):
            check.note(toDevice(numpy.array([-2, 1])), 4)
        return
    check.note(toDevice(numpy.array([-2, 1])), 4)
    check.note(toDevice(numpy.array([0, 9])), 4)
    with pytest.raises(Refused, match=r"\(-2, 1, 4\)"):
        readChecks()
    readChecks()  # read: cleared


@given(batches=st.lists(st.tuples(st.booleans(), st.floats(allow_nan=False), st.floats(-5, 5)), min_size=1,
                        max_size=5), dtype=st.sampled_from([numpy.bool_, numpy.float32]))
def test_the_value_kernel_keeps_the_first_bad_batch_on_every_path(batches, dtype):
    expected = [0.0, 0.0, 0.0]
    for bad, first, second in batches:
        if bad and not expected[0]:
            expected = [1.0, first, second]
    for path in ["numpy", *kernelPaths()]:
        record = numpy.zeros(3, numpy.float64)
        for bad, first, second in batches:
            record = runPath(path, valueKer, [numpy.array([bad], dtype), numpy.array([first, second]), 2, record],
                             size=1)[0]
        assert record.tolist() == expected, path


def test_a_value_check_raises_at_the_call_on_the_cpu_and_at_the_read_on_a_gpu():
    check = ValueCheck(lambda *values: fail(*values))
    values = toDevice(numpy.array([0.5, 3.0, 7.0]))
    check.note(values.max() > 10, values.min(), values.max(), xp.abs(values).sum())
    readChecks()
    if not backend.isGpu:
        with pytest.raises(Refused, match=r"\(0.5, 7.0, 10.5\)"):
            check.note(values.max() > 5, values.min(), values.max(), values.sum())
        return
    check.note(values.max() > 5, values.min(), values.max(), values.sum())  # the first bad batch: kept
    check.note(values.min() < 1, values.max(), values.max(), values.max())
    with pytest.raises(Refused, match=r"\(0.5, 7.0, 10.5\)"):
        readChecks()
    readChecks()  # read: cleared


def test_a_device_scalar_is_the_float_it_holds():
    value = DeviceScalar(toDevice(numpy.array(2.5)))
    assert float(value) == 2.5 and value == 2.5 and value > 2 and 2 < value and value + 1 == 3.5
    assert 1 - value == -1.5 and value * 2 == 5.0 and value / 2 == 1.25 and -value == -2.5 and abs(-value) == 2.5
    assert f"{value:.2f}" == "2.50" and str(value) == "2.5" and round(value) == 2 and math.isclose(value, 2.5)
    assert value == pytest.approx(2.5) and numpy.asarray(value) == 2.5 and hash(value) == hash(2.5)
