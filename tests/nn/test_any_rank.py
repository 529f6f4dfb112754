"""Modules on tensors of any rank: Linear over the last axis, SoftMax along any axis, Embedder on index arrays
of any shape, Transpose, SwapAxes and the batched MatMul: float64 gradient checks and formulas by hand."""

import numpy
import pytest

from minidl.backend import toDevice, toHost
from minidl.errors import ModuleError
from minidl.nn import Embedder, Graph, Identity, Linear, MatMul, SoftMax, SwapAxes, Transpose
from minidl.testing import checkGradients as checkModuleGradients

rng = numpy.random.default_rng(7)


def data(*shape):
    return toDevice(rng.standard_normal(shape))


def test_linear_over_the_last_axis_keeps_leading_axes():
    layer = Linear(4, 3, dtype=numpy.float64)
    layer.vars["b"].set(rng.standard_normal(3))
    x = data(2, 5, 4)
    expected = toHost(x) @ toHost(layer.W) + toHost(layer.b)
    numpy.testing.assert_allclose(toHost(layer(x)), expected, rtol=1e-12)
    checkModuleGradients(layer, data(3, 2, 4))


@pytest.mark.parametrize("axis, shape", [(1, (2, 3, 4)), (-1, (2, 3, 4)), (0, (3, 2)), (2, (2, 2, 3, 2))])
def test_softmax_along_any_axis(axis, shape):
    x = data(*shape)
    host = toHost(x)
    expected = numpy.exp(host) / numpy.exp(host).sum(axis=axis, keepdims=True)
    numpy.testing.assert_allclose(toHost(SoftMax(axis)(x)), expected, rtol=1e-12)
    checkModuleGradients(SoftMax(axis), x)


def test_softmax_refuses_an_axis_out_of_range():
    with pytest.raises(ModuleError):
        SoftMax(3)(data(2, 3))
    with pytest.raises(ModuleError):
        SoftMax(1.0)


def test_embedder_on_indices_of_any_shape():
    table = Embedder(7, 3, dtype=numpy.float64)
    indices = toDevice(rng.integers(0, 7, (4, 2, 3)))
    out = table(indices)
    assert out.shape == (4, 2, 3, 3)
    numpy.testing.assert_array_equal(toHost(out), toHost(table.W)[toHost(indices)])
    checkModuleGradients(table, indices)


def test_transpose_and_swapaxes():
    x = data(2, 3, 4)
    numpy.testing.assert_array_equal(toHost(Transpose((2, 0, 1))(x)), toHost(x).transpose(2, 0, 1))
    numpy.testing.assert_array_equal(toHost(SwapAxes(0, -1)(x)), toHost(x).swapaxes(0, 2))
    checkModuleGradients(Transpose((1, 2, 0)), x)
    checkModuleGradients(SwapAxes(0, 1), x)
    with pytest.raises(ModuleError):
        Transpose((0, 0, 1))
    with pytest.raises(ModuleError):
        Transpose((1, 0))(x)
    with pytest.raises(ModuleError):
        SwapAxes(0, 3)(x)


def test_batched_matmul_in_a_graph():
    a, b = Identity().node(), Identity().node()
    product = MatMul().node(a, SwapAxes(-1, -2).node(b))  # A Bᵀ, as attention's Q Kᵀ
    graph = Graph(inputs=[a, b], outputs=product)
    x, y = data(2, 3, 4), data(2, 5, 4)
    numpy.testing.assert_allclose(toHost(graph([x, y])), toHost(x) @ toHost(y).swapaxes(1, 2), rtol=1e-12)
    checkModuleGradients(graph, [x, y])
    checkModuleGradients(MatMul(), [data(3, 2, 4), data(3, 4, 2)])
    with pytest.raises(ModuleError):
        MatMul()([data(2, 3, 4), data(3, 4, 2)])
    with pytest.raises(ModuleError):
        MatMul()([data(3, 4), data(3, 4), data(4, 4)])
