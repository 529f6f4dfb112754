"""Numerical gradient checks in float64 for every module and for graphs with fan-out, fan-in and sharing."""

import numpy
import pytest

from minidl.backend import toDevice
from minidl.nn import Activation, Add, Concat, Graph, Identity, Linear, Sequential, activationfunctions
from minidl.testing import checkGradients

rng = numpy.random.default_rng(1)


def data(*shape):
    return toDevice(rng.standard_normal(shape))


def linear(insize, outsize, **kwargs):
    layer = Linear(insize, outsize, dtype=numpy.float64, **kwargs)
    if layer.useBias:
        layer.vars["b"].set(rng.standard_normal(outsize))
    return layer


@pytest.mark.parametrize("useBias", [True, False])
def test_linear(useBias):
    checkGradients(linear(5, 3, useBias=useBias), data(4, 5))


@pytest.mark.parametrize("fn", activationfunctions.ALL, ids=lambda fn: fn.name)
def test_activation(fn):
    x = data(3, 7)
    x[abs(x) < 1e-2] = 0.5  # away from relu's kink
    checkGradients(Activation(fn), x)


def test_activation_with_parameter():
    checkGradients(Activation(activationfunctions.leakyRelu, args=(0.3,)), data(4, 4) + 0.01)


def test_add():
    checkGradients(Add(), [data(3, 4), data(3, 4), data(3, 4)])


def test_concat():
    checkGradients(Concat(axis=1), [data(3, 2), data(3, 5)])
    checkGradients(Concat(axis=0), [data(1, 4), data(2, 4)])


def test_identity():
    checkGradients(Identity(), data(2, 3))


def test_sequential():
    seq = Sequential().extend([linear(4, 6), Activation(activationfunctions.tanh), linear(6, 2)])
    checkGradients(seq, data(5, 4))


def test_sequential_with_a_module_used_twice():
    shared = linear(3, 3)
    seq = Sequential().extend([shared, Activation(activationfunctions.sigmoid), shared])
    checkGradients(seq, data(2, 3))


def test_graph_fan_out_fan_in_and_shared_module():
    shared = linear(4, 4, name="shared")
    inp = Identity(name="x").node()
    left = Activation(activationfunctions.tanh).node(shared.node(inp))  # fan-out of inp ...
    right = shared.node(Activation(activationfunctions.sigmoid).node(inp))  # ... and the shared module used again
    merged = Add().node(left, right)  # fan-in
    joined = Concat().node(merged, inp)
    out = linear(8, 2).node(joined)
    checkGradients(Graph(inputs=inp, outputs=out), data(3, 4))


def test_graph_with_two_inputs_and_two_outputs():
    a, b = linear(3, 4).node(), linear(2, 4).node()
    total = Add().node(a, b)
    first, second = Activation(activationfunctions.elu).node(total), linear(4, 1).node(total)
    net = Graph(inputs=[a, b], outputs=[first, second])
    checkGradients(net, [data(5, 3), data(5, 2)])


def test_node_using_one_parent_twice():
    inp = linear(3, 3).node()
    net = Graph(inputs=inp, outputs=Add().node(inp, inp))
    checkGradients(net, data(2, 3))
