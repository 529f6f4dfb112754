"""Cast and calcMode: activations converted at a graph's edges (forward rounds like astype, backward converts the
gradient back), and a built network converted to another compute dtype."""

import numpy
import pytest

from minidl import ModuleError
from minidl.backend import toDevice, toHost
from minidl.nn import BatchNorm, Cast, Linear, Sequential
from minidl.testing import checkGradients


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_cast_rounds_forward_and_converts_the_gradient_back():
    x = numpy.array([[1.0, 1 + 2**-12, 70000.0, -3e-8]])
    cast = Cast(numpy.float16)
    y = cast(toDevice(x, dtype=numpy.float64))
    assert y.dtype == numpy.float16
    numpy.testing.assert_array_equal(toHost(y), x.astype(numpy.float16))  # 1 + 2^-12 → 1, 70000 → inf
    grad = cast.backward(toDevice(numpy.array([[0.5, -2.0, 3.0, 1e-3]]), dtype=numpy.float16))
    assert grad.dtype == numpy.float64
    numpy.testing.assert_array_equal(toHost(grad), numpy.array([[0.5, -2.0, 3.0, 1e-3]], numpy.float16))


@pytest.mark.parametrize("bad", ["int32", numpy.complex64, "nonsense", None])
def test_cast_and_calc_mode_refuse_other_dtypes(bad):
    with pytest.raises(ModuleError):
        Cast(bad)
    with pytest.raises(ModuleError):
        Linear(2, 2).calcMode(bad)


def test_calc_mode_converts_parameters_and_buffers_and_keeps_the_function():
    net = Sequential().extend([Linear(4, 3), BatchNorm(3), Linear(3, 2)])
    x = numpy.random.default_rng(1).standard_normal((8, 4))
    expected = toHost(net(toDevice(x, dtype=numpy.float32))).astype(numpy.float64)
    net.calcMode(numpy.float16)
    for name, var in net.getVarTable().items():
        assert var.data.dtype == numpy.float16 and var.grad.dtype == numpy.float16, name
        assert not toHost(var.grad).any()
    assert all(buffer.dtype == numpy.float32 for buffer in net.getBufferTable().values()), "BatchNorm keeps float32"
    half = toHost(net(toDevice(x, dtype=numpy.float16))).astype(numpy.float64)
    numpy.testing.assert_allclose(half, expected, rtol=2e-2, atol=2e-2)
    net.calcMode("float64")
    assert {var.data.dtype for var in net.getVarTable().values()} == {numpy.dtype(numpy.float64)}
    assert all(buffer.dtype == numpy.float64 for buffer in net.getBufferTable().values())


def test_cast_inside_a_float64_network_passes_the_numerical_gradient_check():
    wide = numpy.float64
    net = Sequential().extend([Linear(3, 4, dtype=wide), Cast(wide), Linear(4, 2, dtype=wide)])
    checkGradients(net, toDevice(numpy.random.default_rng(2).standard_normal((5, 3))))
