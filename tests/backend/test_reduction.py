"""The Reduction kernel type: results against float64 sums and against the host path's stated order (bit for bit),
the same bits on every thread count, CuPy's launch on the simulated device, and argument checks that run before
anything."""

import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from hypothesis import settings

from minidl import BackendError, backend
from minidl.backend import Reduction, reductionsource
from minidl.backend.reduction import normalizeAxis
from minidl.testing import checkReduction
from minidl.testing.kernels import onlyPaths
from tests.kernellegs import devicePath


def _sumNumpy(x, y, axis, keepdims):
    y[...] = numpy.sum(x, axis=axis, keepdims=keepdims, dtype=y.dtype)


def _sumSquaresAboutNumpy(x, centre, scale, y, axis, keepdims):
    y[...] = scale * numpy.sum((x - centre) * (x - centre), axis=axis, keepdims=keepdims)


def _maxNumpy(x, y, axis, keepdims):
    """CUDA's max of floats is fmax: a number wins over NaN."""
    y[...] = numpy.fmax.reduce(x, axis=axis, keepdims=keepdims, initial=-numpy.inf)


total = Reduction("test_sum", "T x", "T y", "x", "a + b", "y = a", "0", _sumNumpy)
squaresAbout = Reduction("test_squares_about", "T x, T centre, T scale", "T y", "(x - centre) * (x - centre)",
                         "a + b", "y = scale * a", "0", _sumSquaresAboutNumpy)
largest = Reduction("test_max", "T x", "T y", "x", "max(a, b)", "y = a", "-INFINITY", _maxNumpy)
halfSum = Reduction("test_half_sum", "T x", "T y", "x", "a + b", "y = a", "0", _sumNumpy, reduceType="float")

CASES = [((5, 37), 1), ((37, 5), 0), ((3, 4, 5, 6), (0, 2, 3)), ((3, 4, 5, 6), (1, 3)), ((2, 3, 4), -1),
         ((7,), None), ((2, 3), ()), ((4, 1, 9), (1, 2)), ((6, 0), 1), ((0, 6), 0)]


def _run(path, kernel, *args, **options):
    if path == "numpy":
        return kernel.callNumpy(*args, **options)
    if path == "host":
        return kernel.callCompiled(*args, **options)
    devices = [backend.toDevice(arg) if isinstance(arg, numpy.ndarray) else arg for arg in args]
    result = kernel(*devices, **options)
    return backend.toHost(result)


PATHS = ["numpy", "host", devicePath()]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape, axis", CASES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_sums_are_within_the_rounding_bound_of_a_float64_sum(path, shape, axis, keepdims):
    """A float32 sum of n values, in any order, is within (n - 1)·eps·sum|x| of the exact sum (to first order)."""
    x = numpy.random.default_rng(1).standard_normal(shape).astype(numpy.float32)
    exact = numpy.sum(x.astype(numpy.float64), axis=axis, keepdims=keepdims)
    bound = (x.size // max(exact.size, 1)) * numpy.finfo(numpy.float32).eps * numpy.sum(
        numpy.abs(x.astype(numpy.float64)), axis=axis, keepdims=keepdims)
    y = _run(path, total, x, numpy.full(exact.shape, 7, numpy.float32), axis=axis, keepdims=keepdims)
    assert y.shape == exact.shape and numpy.all(numpy.abs(y - exact) <= bound)


def _hostOrderSum(x, axes):
    """The host path's stated order in float32, element by element: the reduced runs (size-1 axes dropped,
    neighbouring reduced axes merged) walked in C order, the value at index k of the last run added to partial sum
    k % 8, the 8 partial sums joined as (p + p+4), then (p + p+2), then (p + p+1)."""
    inner = reductionsource.geometry(x.shape, axes)[1]
    kept = [axis for axis in range(x.ndim) if axis not in axes]
    rows = numpy.transpose(x, kept + list(axes)).reshape(int(numpy.prod([x.shape[a] for a in kept])), -1)
    sums = []
    for row in rows:
        lanes = [numpy.float32(0)] * reductionsource.LANES
        for j, value in enumerate(row):
            lanes[j % inner % reductionsource.LANES] = numpy.float32(lanes[j % inner % reductionsource.LANES] + value)
        width = reductionsource.LANES // 2
        while width:
            lanes = [numpy.float32(lanes[p] + lanes[p + width]) for p in range(width)]
            width //= 2
        sums.append(lanes[0])
    return numpy.array(sums, numpy.float32)


@pytest.mark.parametrize("shape, axis", [((3, 37), (1,)), ((19, 3), (0,)), ((3, 4, 5, 6), (0, 2, 3)),
                                         ((3, 4, 5, 6), (1, 3)), ((2, 1, 11), (1, 2))])
def test_the_host_path_sums_in_its_stated_order_bit_for_bit(shape, axis):
    x = (numpy.random.default_rng(2).standard_normal(shape) * 10.0 ** numpy.random.default_rng(3).integers(
        -3, 4, shape)).astype(numpy.float32)
    out = numpy.zeros([side for index, side in enumerate(shape) if index not in axis], numpy.float32)
    total.callCompiled(x, out, axis=axis)
    numpy.testing.assert_array_equal(out.reshape(-1), _hostOrderSum(x, axis))


def test_the_host_path_gives_the_same_bits_on_one_thread_and_on_several():
    script = ("import numpy, sys; from minidl.backend import Reduction\n"
              "k = Reduction('test_threads_sum', 'T x', 'T y', 'x * x', 'a + b', 'y = a', '0', None)\n"
              "x = numpy.random.default_rng(5).standard_normal((600, 1000)).astype(numpy.float32)\n"
              "y = numpy.zeros(600, numpy.float32); k.callCompiled(x, y, axis=1)\n"
              "z = numpy.zeros(1000, numpy.float32); k.callCompiled(x, z, axis=0)\n"
              "sys.stdout.write(y.tobytes().hex() + z.tobytes().hex())\n")
    root = Path(__file__).parents[2]
    outputs = []
    for threads in ("1", "3"):
        environment = {**os.environ, "OMP_NUM_THREADS": threads, "PYTHONPATH": str(root), "MINIDL_BACKEND": "numpy"}
        outputs.append(subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True,
                                      text=True, check=True).stdout)
    assert outputs[0] == outputs[1] and len(outputs[0]) == 2 * 4 * 1600


@pytest.mark.parametrize("path", PATHS)
def test_an_input_of_the_outputs_shape_is_read_once_per_output_and_scalars_are_typed(path):
    x = numpy.random.default_rng(4).standard_normal((6, 50))
    centre = x.mean(axis=1, keepdims=True)
    y = _run(path, squaresAbout, x, centre, 0.5, numpy.zeros(6), axis=1)
    numpy.testing.assert_allclose(y, 0.5 * 50 * x.var(axis=1), rtol=1e-12)
    z = _run(path, squaresAbout, x, x.mean(axis=0, keepdims=True), 1, numpy.zeros((1, 50)), axis=0, keepdims=True)
    numpy.testing.assert_allclose(z, 6 * x.var(axis=0, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("path", PATHS)
def test_max_is_exact_and_an_empty_reduction_gives_the_identity(path):
    x = numpy.random.default_rng(6).standard_normal((4, 33)).astype(numpy.float32)
    numpy.testing.assert_array_equal(_run(path, largest, x, numpy.zeros(4, numpy.float32), axis=1), x.max(axis=1))
    empty = _run(path, largest, numpy.zeros((3, 0), numpy.float32), numpy.zeros(3, numpy.float32), axis=1)
    numpy.testing.assert_array_equal(empty, [-numpy.inf] * 3)


@pytest.mark.parametrize("path", PATHS)
def test_float16_data_summed_in_float32(path):
    x = numpy.full((2, 4096), 1.0, numpy.float16)  # a float16 running sum would stop at 2048
    y = _run(path, halfSum, x, numpy.zeros(2, numpy.float16), axis=1)
    numpy.testing.assert_array_equal(y, [4096, 4096])


def test_one_launch_with_cupys_geometry_on_the_simulated_device():
    if backend.name != "simulated":
        pytest.skip("the simulated device counts launches (MINIDL_BACKEND=simulated)")
    from minidl.backend.simulated import trace

    cases = [  # shape, axis, output elements x threads per output (CuPy's _get_block_specs, 512 per block)
        ((64, 1000), 1, 64 * 512),  # a long row per output: one block each
        ((1000, 64), 0, 2 * 512),  # contiguous outputs: 32 per block
        ((8, 16, 40), (0, 2), 16 * 512),  # 320 values per output: a block per output
        ((64, 3), 1, 512),  # 3 values per output: 128 outputs per block, 64 fit in one block
    ]
    for shape, axis, threads in cases:
        x = backend.toDevice(numpy.ones(shape, numpy.float32))
        out = backend.xp.zeros(numpy.sum(numpy.ones(shape), axis=axis).shape, numpy.float32)
        with trace.recording() as recorded:
            total(x, out, axis=axis)
        (launch,) = recorded.launches
        assert (launch.name, launch.threads) == ("test_sum", threads)
        assert (launch.bytesRead, launch.bytesWritten) == (x.nbytes, out.nbytes)
        assert recorded.syncs == []


def test_axis_normalization():
    assert normalizeAxis(None, 3, "k") == (0, 1, 2)
    assert normalizeAxis(-1, 3, "k") == (2,)
    assert normalizeAxis([2, 0], 3, "k") == (0, 2)
    assert normalizeAxis((), 3, "k") == ()


X = numpy.ones((3, 4), numpy.float32)


@pytest.mark.parametrize("args, options, message", [
    ((X,), {"axis": 1}, "takes 2 arguments"),
    ((X, numpy.ones(4, numpy.float32)), {"axis": 1}, r"output y must have the reduced shape \(3,\)"),
    ((X, numpy.ones((3, 1), numpy.float32)), {"axis": 1}, r"reduced shape \(3,\)"),
    ((X, numpy.ones(3, numpy.float32)), {"axis": 1, "keepdims": True}, r"reduced shape \(3, 1\)"),
    ((X, numpy.ones(3, numpy.float64)), {"axis": 1}, "mixed dtypes for type T"),
    ((X, numpy.ones(3, numpy.float32)), {"axis": 2}, "axis 2 is out of range"),
    ((X, numpy.ones(3, numpy.float32)), {"axis": (1, -1)}, "names an axis twice"),
    ((X, numpy.ones(3, numpy.float32)), {"axis": 1.0}, "axis must be None, an int or a tuple of ints"),
    ((X, numpy.ones(3, numpy.float32)), {"axis": True}, "axis must be None, an int or a tuple of ints"),
    ((X, numpy.ones(3, numpy.float32)), {"axis": 1, "keepdims": 1}, "keepdims must be a bool"),
    ((X, 5.0), {"axis": 1}, "output argument y must be an array"),
    ((numpy.ones((4, 3), numpy.float32).T, numpy.ones(3, numpy.float32)), {"axis": 1}, "C-contiguous"),
])
def test_bad_arguments_raise_and_change_nothing(args, options, message):
    outputs = [arg.copy() for arg in args if isinstance(arg, numpy.ndarray)]
    for call in (total, total.callNumpy, total.callCompiled):
        with pytest.raises(BackendError, match=message):
            call(*args, **options)
    for before, after in zip(outputs, [arg for arg in args if isinstance(arg, numpy.ndarray)]):
        numpy.testing.assert_array_equal(before, after)


def test_inputs_must_share_the_shape_or_have_the_outputs():
    with pytest.raises(BackendError, match=r"x \(3, 4\), centre \(1, 4\)"):
        squaresAbout(X, numpy.ones((1, 4), numpy.float32), 1.0, numpy.ones(3, numpy.float32), axis=1)
    with pytest.raises(BackendError, match=r"x \(3, 4\), centre \(3, 5\)"):
        squaresAbout(X, numpy.ones((3, 5), numpy.float32), 1.0, numpy.ones(3, numpy.float32), axis=1)
    read = numpy.ones(3, numpy.float32)
    read.flags.writeable = False
    with pytest.raises(BackendError, match="output y is read-only"):
        total(X, read, axis=1)


@pytest.mark.parametrize("arguments, message", [
    (("bad name", "T x", "T y", "x", "a + b", "y = a", "0"), "must be a C identifier"),
    (("k", "T x", "T y", "x", "a + b", "y = a", ""), "identity must be a C expression"),
    (("k", "T x", "T y", "", "a + b", "y = a", "0"), "mapExpr must be a C expression"),
    (("k", "T x", "", "x", "a + b", "y = a", "0"), "declares no output"),
    (("k", "raw T x", "T y", "x[0]", "a + b", "y = a", "0"), "no non-raw input"),
    (("k", "T x", "raw T y", "x", "a + b", "y[0] = a", "0"), "an output cannot be raw"),
    (("k", "T a", "T y", "a", "a + b", "y = a", "0"), "cannot name a parameter 'a'"),
    (("k", "T x, T x", "T y", "x", "a + b", "y = a", "0"), "declares a parameter name twice"),
])
def test_bad_declarations_are_refused(arguments, message):
    with pytest.raises(BackendError, match=message):
        Reduction(*arguments, reference=None)


def _sumBound(x, y, axis, keepdims):
    """A sum of n values, in any order, differs from another order's by at most about 2·n·eps·sum|x| (each is
    within n·eps·sum|x| of the exact sum, to first order)."""
    eps = numpy.finfo(y.dtype).eps
    n = x.size // max(y.size, 1)
    return [2 * n * eps * numpy.sum(numpy.abs(x), axis=axis, keepdims=keepdims) + numpy.finfo(y.dtype).tiny]


def test_sums_hold_on_every_path_with_special_values_drawn():
    checkReduction(total, oracle=lambda x, y, axis, keepdims: [numpy.sum(x, axis=axis, keepdims=keepdims)],
                   bounds=_sumBound)


def test_max_holds_exactly_on_every_path():
    """fmax lets a number win over NaN, as CUDA's max does: no NaN propagation to check, but the result is exact
    (but for the sign of a zero: fmax(0, -0) may be either, so it depends on the order)."""
    checkReduction(largest, oracle=lambda x, y, axis, keepdims: [numpy.max(
        numpy.where(numpy.isnan(x), -numpy.inf, x), axis=axis, keepdims=keepdims, initial=-numpy.inf)],
        tolerances=(0, 0), nanPropagates=False, signedZeros=False)


def test_check_reduction_finds_a_host_text_that_disagrees_with_its_reference():
    wrong = Reduction("test_wrong_sum", "T x", "T y", "x", "a + b", "y = a + 1", "0", _sumNumpy)
    with pytest.raises(AssertionError, match="test_wrong_sum on host against its NumPy reference"):
        with onlyPaths(["host"]):
            checkReduction(wrong, bounds=_sumBound, hypothesisSettings=settings(max_examples=5, deadline=None))
