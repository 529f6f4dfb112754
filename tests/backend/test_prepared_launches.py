"""Device kernel launches after the first of a signature take its prepared launch (devicelaunch.PreparedLaunch): one
pass over the arrays (dtype, contiguity, a raw array's ndim, the non-raw arrays' one shape), the scalars typed, then
CuPy's call; whatever differs takes the full checks, so every error is the one the first call would have raised,
before anything is launched. On the simulated device (MINIDL_BACKEND=simulated, CI's second run of the suite), whose
trace counts the launches. Oracles: NumPy formulas on the host copies."""

import numpy
import pytest

from minidl import BackendError, backend
from minidl.backend import Elementwise, Reduction
from minidl.backend.device import isDeviceArray
from minidl.backend.simulated import trace

pytestmark = pytest.mark.skipif(backend.name != "simulated",
                                reason="device launches: run when MINIDL_BACKEND=simulated (CI's second run)")

scaled = Elementwise("test_launch_scaled", "T x, int32 n, float32 a", "T y", "y = x * n + a",
                     lambda x, n, a, y: None)
gather = Elementwise("test_launch_gather_rows", "raw T table, int32 row", "T y", "y = table[{row, (int)i}]",
                     lambda table, row, y: None)
rawCopy = Elementwise("test_launch_raw_head", "raw T values", "raw T out", "out[i] = values[i]",
                      lambda values, out: None)
scaledSum = Reduction("test_launch_scaled_sum", "T x, T s", "T y", "x * s", "a + b", "y = a", "0",
                      lambda x, s, y, axis, keepdims: None)


def device(values, dtype=numpy.float32):
    return backend.xp.asarray(numpy.asarray(values, dtype=dtype))


def host(array):
    return backend.toHost(array)


def onDevice(args):
    return any(isDeviceArray(arg) for arg in args)


def counting(cls, calls):
    """``cls.checkArgs`` noting in ``calls`` each full check of a call on device arrays (the simulated device's
    kernels check their host copies again as they run them: not minidl's launch path)."""
    real = cls.checkArgs

    def counted(kernel, args, *rest):
        if onDevice(args):
            calls.append((kernel.name, *rest))
        return real(kernel, args, *rest)

    return counted


def prepared():
    """The float32 call of ``scaled`` with an int and a float scalar, launched once (every check, then prepared)."""
    x, y = device(numpy.arange(4)), device(numpy.zeros(4))
    scaled(x, 2, 0.5, y)
    numpy.testing.assert_array_equal(host(y), numpy.arange(4, dtype=numpy.float32) * 2 + 0.5)
    return x, y


def test_later_launches_of_a_signature_skip_the_full_checks_launch_once_and_see_new_values(monkeypatch):
    prepared()
    calls = []
    monkeypatch.setattr(Elementwise, "checkArgs", counting(Elementwise, calls))
    for n, a, size in [(3, 0.25, 4), (3, 0.25, 7), (-1, 1e30, 1), (0, -0.0, 5)]:
        values = numpy.linspace(-2, 2, size, dtype=numpy.float32)
        x, y = device(values), device(numpy.full(size, 9))
        with trace.recording() as recorded:
            assert scaled(x, n, a, y) is y
        assert [launch.name for launch in recorded.launches] == ["test_launch_scaled"]
        numpy.testing.assert_array_equal(host(y), values * numpy.float32(n) + numpy.float32(a))
    assert calls == []
    table = device(numpy.arange(12).reshape(3, 4))
    gather(table, 2, y := device(numpy.zeros(4)))
    numpy.testing.assert_array_equal(host(y), [8, 9, 10, 11])
    wider = numpy.arange(20, dtype=numpy.float32).reshape(2, 10)
    numpy.testing.assert_array_equal(host(gather(device(wider), 1, y)), wider[1, :4])  # a raw array's shape moves
    assert calls == [("test_launch_gather_rows", None)]  # its first call only


@pytest.mark.parametrize("change, message", [
    (lambda x, y: ((x, 2, 0.5, device(numpy.zeros(5))), {}), r"one shape, got x \(4,\), y \(5,\)"),
    (lambda x, y: ((x.astype(numpy.float64), 2, 0.5, y), {}), "mixed dtypes for type T"),
    (lambda x, y: ((device(numpy.ones((4, 2))).T, 2, 0.5, device(numpy.zeros((2, 4)))), {}),
     "array x must be C-contiguous"),
    (lambda x, y: ((x, 2, 0.5, device(numpy.zeros(8))[::2]), {}), "array y must be C-contiguous"),
    (lambda x, y: ((x, 2**40, 0.5, y), {}), "scalar n does not fit int32: 1099511627776"),
    (lambda x, y: ((x, float("nan"), 0.5, y), {}), "scalar n does not fit int32: nan"),
    (lambda x, y: ((x, numpy.int64(2**40), 0.5, y), {}), r"scalar n does not fit int32: np.int64\(1099511627776\)"),
    (lambda x, y: ((x, numpy.float64("nan"), 0.5, y), {}), r"scalar n does not fit int32: np.float64\(nan\)"),
    (lambda x, y: ((x, 2, 0.5, y), {"size": 4}), "size is given only when every array is raw"),
    (lambda x, y: ((x, 2, 0.5), {}), "takes 4 arguments"),
    (lambda x, y: ((x, 2, 0.5, numpy.zeros(4, numpy.float32)), {}), "arrays must all be on one device"),
])
def test_what_differs_raises_the_first_calls_error_and_launches_nothing(change, message):
    x, y = prepared()
    args, keywords = change(x, y)
    before = [host(arg).copy() if not isinstance(arg, numpy.ndarray) else arg.copy()
              for arg in args if hasattr(arg, "shape")]
    with trace.recording() as recorded, pytest.raises(BackendError, match=message):
        scaled(*args, **keywords)
    assert recorded.launches == []
    after = [host(arg) if not isinstance(arg, numpy.ndarray) else arg for arg in args if hasattr(arg, "shape")]
    for copy, arg in zip(before, after):
        numpy.testing.assert_array_equal(copy, arg)


def test_a_raw_array_of_another_ndim_takes_the_full_checks(monkeypatch):
    out = device(numpy.zeros(6))
    rawCopy(device(numpy.arange(6.0)), out, size=6)
    calls = []
    monkeypatch.setattr(Elementwise, "checkArgs", counting(Elementwise, calls))
    rawCopy(device(numpy.arange(6.0) + 1), out, size=6)
    assert calls == []
    table = numpy.arange(6.0).reshape(2, 3) * 10  # another ndim: another CuPy binary, so the first call's checks
    numpy.testing.assert_array_equal(host(rawCopy(device(table), out, size=6)), table.reshape(-1))
    assert calls == [("test_launch_raw_head", 6)]


@pytest.mark.parametrize("size, message", [
    (None, "loop's size is undecided: give it as size="),
    (-1, "size must be an int >= 0"),
    (True, "size must be an int >= 0"),
    (2.0, "size must be an int >= 0"),
])
def test_a_raw_loop_checks_its_size_on_every_launch(size, message):
    out = device(numpy.zeros(5))
    numpy.testing.assert_array_equal(host(rawCopy(device(numpy.arange(1.0, 6.0)), out, size=3)), [1, 2, 3, 0, 0])
    numpy.testing.assert_array_equal(host(rawCopy(device(numpy.arange(1.0, 6.0)), out, size=4)), [1, 2, 3, 4, 0])
    with trace.recording() as recorded, pytest.raises(BackendError, match=message):
        rawCopy(device(numpy.full(5, 7.0)), out, size=size)
    assert recorded.launches == []
    numpy.testing.assert_array_equal(host(out), [1, 2, 3, 4, 0])


def test_a_reductions_later_launches_skip_the_full_checks_and_what_differs_takes_them(monkeypatch):
    values = numpy.arange(12, dtype=numpy.float32).reshape(3, 4)
    y = device(numpy.zeros(4))
    scaledSum(device(values), 2.0, y, axis=0)
    numpy.testing.assert_array_equal(host(y), values.sum(axis=0) * 2)
    calls = []
    monkeypatch.setattr(Reduction, "checkArgs", counting(Reduction, calls))
    with trace.recording() as recorded:
        scaledSum(device(values + 1), -1.0, y, axis=0)
    assert calls == [] and [launch.name for launch in recorded.launches] == ["test_launch_scaled_sum"]
    numpy.testing.assert_array_equal(host(y), -(values + 1).sum(axis=0))
    rows = device(numpy.zeros(3))
    scaledSum(device(values), 1.0, rows, axis=1)  # another axis: a signature of its own, fully checked once
    numpy.testing.assert_array_equal(host(rows), values.sum(axis=1))
    assert calls == [("test_launch_scaled_sum", 1, False)]
    with trace.recording() as recorded, pytest.raises(BackendError, match="must be C-contiguous"):
        scaledSum(device(numpy.ones((4, 3))).T, 1.0, y, axis=0)
    assert recorded.launches == [] and calls[-1] == ("test_launch_scaled_sum", 0, False)
    with pytest.raises(BackendError, match="scalar s does not fit"):
        scaledSum(device(values).astype(numpy.int32), 2**40, device(numpy.zeros(4), numpy.int32), axis=0)
