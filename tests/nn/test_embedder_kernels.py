"""The Embedder's kernels: the lookup (an index out of range reads zeros), the binary search of each index's run,
and the gather that sums each run without atomics, in position order: the bits of ``numpy.add.at``, the same on
every path and every run."""

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import backend
from minidl.backend import readChecks, toDevice, toHost
from minidl.errors import ModuleError
from minidl.nn import Embedder
from minidl.nn.embedder import boundsKer, gradKer, lookupKer
from minidl.testing import arrays, checkKernel, floatDtypes, kernelPaths, runPath


@st.composite
def lookupCases(draw):
    dtype, vocabulary, size = draw(floatDtypes()), draw(st.integers(1, 6)), draw(st.integers(1, 4))
    W = draw(arrays(dtype, (vocabulary, size)))
    index = numpy.array(draw(st.lists(st.integers(-2, vocabulary + 1), min_size=1, max_size=7)), numpy.int64)
    return dtype, [W, index, size, vocabulary, numpy.full(index.shape + (size,), numpy.nan, dtype)]


def lookupOracle(W, index, size, vocabulary, y):
    return [numpy.array([W[k] if 0 <= k < vocabulary else numpy.zeros(size) for k in index])]


@st.composite
def gradCases(draw):
    dtype, vocabulary, size = draw(floatDtypes()), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    index = numpy.array(draw(st.lists(st.integers(0, vocabulary - 1), min_size=1, max_size=9)), numpy.int64)
    order = numpy.argsort(index, kind="stable")
    bounds = numpy.searchsorted(index[order], numpy.arange(vocabulary + 1)).astype(numpy.int64)
    grad = draw(arrays(dtype, (index.size, size)))
    dW = draw(arrays(dtype, (vocabulary, size)))
    return dtype, [grad, order, bounds, size, dW], index


def test_lookup_kernel():
    checkKernel(lookupKer, lookupCases(), lookupOracle, size=None, nanPropagates=False)


@settings(deadline=None)
@given(case=gradCases())
def test_the_gather_gives_numpy_add_at_bit_for_bit_on_every_path(case):
    """numpy.add.at adds the rows in position order, as the gather sums each run: the same bits, NaN included."""
    dtype, args, index = case
    grad, _, _, size, dW = args
    total = numpy.zeros_like(dW)
    with numpy.errstate(all="ignore"):
        numpy.add.at(total, index, grad)
        expected = dW + total
    for path in ["numpy", *kernelPaths()]:
        numpy.testing.assert_array_equal(runPath(path, gradKer, args)[0], expected, err_msg=path)


@settings(deadline=None)
@given(values=st.lists(st.integers(-2, 7), min_size=1, max_size=12), extra=st.integers(1, 4))
def test_the_bounds_are_a_binary_search_on_every_path(values, extra):
    ordered = numpy.sort(numpy.array(values, numpy.int32))
    bound = numpy.zeros(extra + 6, numpy.int64)
    expected = [sum(value < v for value in values) for v in range(bound.size)]
    for path in ["numpy", *kernelPaths()]:
        assert runPath(path, boundsKer, [ordered, ordered.size, bound])[0].tolist() == expected, path


def test_a_backward_pass_gives_the_same_bits_every_time():
    rng = numpy.random.default_rng(3)
    backend.seed(0)
    embedder = Embedder(9, 16)
    indices = toDevice(rng.integers(0, 9, (64, 8)))
    grad = toDevice(rng.standard_normal((64, 8, 16)).astype(numpy.float32))
    results = []
    for _ in range(3):
        embedder.vars["W"].grad.fill(0)
        embedder(indices)
        embedder.backward(grad)
        results.append(toHost(embedder.vars["W"].grad).tobytes())
    assert len(set(results)) == 1


def test_an_index_out_of_range_is_reported_by_the_read_and_touches_nothing_until_then():
    embedder = Embedder(4, 2)
    if not backend.isGpu:
        with pytest.raises(ModuleError, match=r"indices must lie in \[0, 4\), got values in \[-1, 2\]"):
            embedder(toDevice(numpy.array([2, -1])))
        return
    before = toHost(embedder.W).copy()
    y = toHost(embedder(toDevice(numpy.array([2, -1, 9]))))
    numpy.testing.assert_array_equal(y, [before[2], [0, 0], [0, 0]])
    embedder.backward(toDevice(numpy.ones((3, 2), numpy.float32)))
    numpy.testing.assert_array_equal(toHost(embedder.vars["W"].grad), [[0, 0], [0, 0], [1, 1], [0, 0]])
    with pytest.raises(ModuleError, match=r"indices must lie in \[0, 4\), got values in \[-1, 9\]"):
        readChecks()
