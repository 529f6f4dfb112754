"""Split and multi-output nodes in a Graph: ``node[i]`` feeds one output to a child, and the gradients of
the pieces are routed back and summed (zeros for a piece nobody reads)."""

import numpy
import pytest

from minidl import ModuleError
from minidl.backend import toDevice, toHost
from minidl.nn import Activation, Add, Concat, Graph, Identity, Linear, Mul, Split, activationfunctions
from minidl.testing import checkGradients

rng = numpy.random.default_rng(2)


def linear(insize, outsize):
    layer = Linear(insize, outsize, dtype=numpy.float64)
    layer.vars["b"].set(rng.standard_normal(outsize))
    return layer


def test_split_gradients():
    x = toDevice(rng.standard_normal((3, 7, 2)))
    checkGradients(Split(axis=1, sections=(2, 4, 1)), x)
    checkGradients(Split(axis=-1, sections=(1, 1)), x)


def test_graph_with_pieces_read_once_twice_never_and_whole():
    inp = Identity(name="x").node()
    split = Split(axis=1, sections=(2, 3, 1)).node(inp)
    first = linear(2, 4).node(split[0])
    second = Activation(activationfunctions.tanh).node(split[1])
    again = linear(3, 4).node(split[1])  # piece 1 feeds two children: its gradients add up
    gated = Mul().node(first, again)
    whole = Concat().node(split)  # the whole list of pieces, read as one parent
    out = Concat().node(gated, second, whole)  # piece 2 is read only through the whole list
    net = Graph(inputs=inp, outputs=out)
    checkGradients(net, toDevice(rng.standard_normal((3, 6))))


def test_an_unread_piece_gets_a_zero_gradient():
    inp = Split(axis=1, sections=(2, 2)).node()
    net = Graph(inputs=inp, outputs=Add().node(inp[1], inp[1]))
    x = toDevice(rng.standard_normal((2, 4)))
    net(x)
    grad = net.backward(toDevice(numpy.ones((2, 2))))
    numpy.testing.assert_array_equal(toHost(grad), [[0, 0, 2, 2], [0, 0, 2, 2]])
    checkGradients(net, x)


def test_reading_an_output_of_a_single_output_node_is_an_error():
    inp = Identity().node()
    net = Graph(inputs=inp, outputs=Identity().node(inp[0]))
    with pytest.raises(ModuleError, match=r"reads output 0 of a parent whose output is float64 \(2, 3\)"):
        net(toDevice(numpy.zeros((2, 3))))
    with pytest.raises(ModuleError, match="non-negative int"):
        inp[-1]
    with pytest.raises(TypeError):
        list(inp)
