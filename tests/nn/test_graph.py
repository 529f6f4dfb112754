"""Graph and Sequential wiring: outputs, variable tables, and the errors for malformed graphs."""

import numpy
import pytest

from minidl import ModuleError
from minidl.backend import toDevice, toHost
from minidl.nn import Activation, Add, Concat, Embedder, Flatten, Graph, Identity, Linear, Reshape, Sequential, relu


def test_graph_matches_the_same_layers_called_by_hand():
    first, second = Linear(4, 3), Linear(3, 2)
    inp = first.node()
    net = Graph(inputs=inp, outputs=second.node(Activation(relu).node(inp)))
    x = toDevice(numpy.random.default_rng(0).standard_normal((5, 4)).astype(numpy.float32))
    expected = numpy.maximum(toHost(x) @ toHost(first.W) + toHost(first.b), 0) @ toHost(second.W) + toHost(second.b)
    numpy.testing.assert_allclose(toHost(net(x)), expected, rtol=1e-5, atol=1e-6)


def test_var_table_names_and_shared_variables_once():
    shared = Linear(2, 2, name="shared")
    inp = Identity().node()
    net = Graph(inputs=inp, outputs=Add().node(shared.node(inp), shared.node(inp)))
    assert list(net.getVarTable()) == ["shared.W", "shared.b"]
    assert net.numOfParams() == 6
    assert net.getVar("shared.W") is shared.vars["W"]


def test_sequential_names_by_position_or_name():
    seq = Sequential().extend([Linear(3, 4), Activation(relu), Linear(4, 1, name="head")])
    assert list(seq.getVarTable()) == ["0.W", "0.b", "head.W", "head.b"]
    assert seq.numOfParams() == 3 * 4 + 4 + 4 + 1
    assert seq.child("head") is seq[2]


def test_modules_reach_their_parameters_as_attributes():
    layer = Linear(3, 2)
    assert layer.W is layer.vars["W"].data and layer.W.shape == (3, 2)
    with pytest.raises(AttributeError):
        _ = layer.missing


def test_train_and_eval_mode_propagate():
    seq = Sequential().extend([Linear(2, 2), Sequential().append(Identity())])
    seq.evalMode()
    assert not seq[0].train and not seq[1][0].train
    seq.trainMode()
    assert seq[1][0].train


def test_a_cycle_is_an_error():
    a = Identity().node()
    b = Linear(2, 2).node(a)
    c = Linear(2, 2).node(b)
    b.addParents(c)
    with pytest.raises(ModuleError, match="cycle"):
        Graph(inputs=a, outputs=c)


def test_an_output_not_reachable_from_the_inputs_is_an_error():
    inp, stray = Identity().node(), Identity().node()
    out = Add().node(Linear(2, 2).node(inp), stray)
    with pytest.raises(ModuleError, match="not reachable"):
        Graph(inputs=inp, outputs=out)


def test_an_input_that_leads_nowhere_is_an_error():
    inp, unused = Identity().node(), Identity().node()
    with pytest.raises(ModuleError, match="does not lead to any output"):
        Graph(inputs=[inp, unused], outputs=Linear(2, 2).node(inp))


def test_the_wrong_number_of_inputs_is_an_error():
    a, b = Identity().node(), Identity().node()
    net = Graph(inputs=[a, b], outputs=Concat().node(a, b))
    x = toDevice(numpy.ones((2, 2), numpy.float32))
    with pytest.raises(ModuleError, match="expects a list of 2 inputs"):
        net(x)
    with pytest.raises(ModuleError, match="expects a list of 2 inputs"):
        net([x, x, x])


def test_backward_before_forward_and_wrong_gradient_shape():
    net = Sequential().append(Linear(2, 3))
    with pytest.raises(ModuleError, match="before a forward"):
        net.backward(toDevice(numpy.ones((1, 3), numpy.float32)))
    net(toDevice(numpy.ones((4, 2), numpy.float32)))
    with pytest.raises(ModuleError, match=r"shape \(4, 3\)"):
        net.backward(toDevice(numpy.ones((4, 2), numpy.float32)))


def test_two_different_modules_with_one_name_is_an_error():
    with pytest.raises(ModuleError, match="both named"):
        Sequential().extend([Linear(2, 2, name="x"), Linear(2, 2, name="x")])


def test_a_child_name_with_a_dot_is_an_error():
    """A child's name is a part of its parameters' qualified names: with a child "fc.1" beside a Sequential "fc",
    "fc.1.W" would name two parameters, and the table kept one of them (the other was neither trained nor saved)."""

    def graph():
        inp = Linear(2, 2, name="fc.1").node()
        return Graph(inputs=inp, outputs=Linear(2, 2).node(inp))

    for build in (lambda: Sequential(Sequential(Linear(2, 2), Linear(2, 2), name="fc"), Linear(2, 2, name="fc.1")),
                  lambda: Sequential().append(Linear(2, 2, name="fc.1")), graph):
        with pytest.raises(ModuleError, match=r"'fc\.1'.*'\.'"):
            build()
    net = Sequential(Linear(2, 2))
    for name in ("fc.1", 5):
        net[0].name = name  # named after construction: refused where the qualified names are made
        with pytest.raises(ModuleError, match=f"may not be named {name!r}"):
            net.getVarTable()


def test_modules_before_an_embedder_get_no_gradient_and_its_table_still_learns():
    """An Embedder's indices are not differentiable (its input gradient is None): the modules before it, a
    named graph input or a Reshape, receive none, and backward still accumulates the table's gradient."""
    indices = toDevice(numpy.array([[1, 2], [3, 1]]))
    grad = toDevice(numpy.arange(12, dtype=numpy.float32).reshape(2, 6))
    expected = numpy.zeros((5, 3), numpy.float32)
    for (row, column), index in numpy.ndenumerate(toHost(indices)):
        expected[index] += toHost(grad)[row, 3 * column:3 * column + 3]

    embedder = Embedder(5, 3, name="table")
    tokens = Identity(name="tokens").node()
    graph = Graph(inputs=tokens, outputs=Flatten().node(embedder.node(tokens)))
    sequential = Sequential().extend([Reshape((2, 2)), Embedder(5, 3), Flatten()])
    for net, table in ((graph, embedder), (sequential, sequential[1])):
        net(indices)
        assert net.backward(grad) is None
        numpy.testing.assert_array_equal(toHost(table.vars["W"].grad), expected)


def test_a_graph_mixing_indices_and_features_returns_none_for_the_indices_only():
    tokens, features = Identity(name="tokens").node(), Identity(name="features").node()
    net = Graph(inputs=[tokens, features], outputs=Concat().node(Embedder(5, 3).node(tokens), features))
    net([toDevice(numpy.array([0, 4])), toDevice(numpy.ones((2, 2), numpy.float32))])
    grads = net.backward(toDevice(numpy.arange(10, dtype=numpy.float32).reshape(2, 5)))
    assert grads[0] is None
    numpy.testing.assert_array_equal(toHost(grads[1]), [[3, 4], [8, 9]])


def test_a_graph_deeper_than_the_recursion_limit():
    inp = Identity().node()
    node = inp
    for _ in range(3000):
        node = Identity().node(node)
    net = Graph(inputs=inp, outputs=node)
    x = toDevice(numpy.ones((2, 2), numpy.float32))
    numpy.testing.assert_array_equal(toHost(net(x)), toHost(x))
    numpy.testing.assert_array_equal(toHost(net.backward(x)), toHost(x))


def test_without_updgrad_no_module_computes_a_gradient_that_no_parameter_takes():
    """backward(grad, updGrad=False) (a training step's): a module whose inputs lead to no parameter computes no ∂x
    (the first Linear after a graph input or a Reshape: its ``grad`` stays None), one between two parameterized
    modules does (the Activation), and the parameters' gradients are those of backward(grad)."""
    rng = numpy.random.default_rng(4)
    x = toDevice(rng.standard_normal((5, 4)).astype(numpy.float32))
    grad = toDevice(rng.standard_normal((5, 2)).astype(numpy.float32))

    def graphNet():
        first, act, second = Linear(4, 3), Activation(relu), Linear(3, 2)
        inp = Identity(name="images").node()
        return Graph(inputs=inp, outputs=second.node(act.node(first.node(inp)))), (first, act, second)

    def sequentialNet():
        modules = (Linear(4, 3), Activation(relu), Linear(3, 2))
        return Sequential().extend([Reshape((5, 4)), *modules]), modules

    for build in (graphNet, sequentialNet):
        (full, fullModules), (lean, leanModules) = build(), build()
        for fullModule, leanModule in zip(fullModules, leanModules):
            for name in fullModule.vars:
                leanModule.vars[name].set(toHost(fullModule.vars[name].data))
        full(x)
        lean(x)
        assert full.backward(grad) is not None
        assert lean.backward(grad, updGrad=False) is None
        first, act, second = leanModules
        assert first.grad is None and act.grad is not None and second.grad is not None
        for fullModule, leanModule in zip(fullModules, leanModules):
            for name in fullModule.vars:
                numpy.testing.assert_array_equal(toHost(leanModule.vars[name].grad), toHost(fullModule.vars[name].grad))
