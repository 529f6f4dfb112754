"""SGD and AdaGrad as optimizers: local and global state agree, AdaGrad follows its formula, per-variable
and changed learning rates are honoured, and misuse raises OptimizerError."""

import numpy
import pytest

from minidl import MinidlError, OptimizerError, backend
from minidl.backend import toDevice, toHost
from minidl.cost import MSE
from minidl.nn import Activation, Linear, Sequential, tanh
from minidl.optim import SGD, AdaGrad
from minidl.optim.hooks import WeightDecay

rng = numpy.random.default_rng(3)
X = rng.standard_normal((16, 5)).astype(numpy.float32)
Y = rng.standard_normal((16, 2)).astype(numpy.float32)


def makeNet(seed=0, dtype=numpy.float32):
    backend.seed(seed)
    return Sequential().extend([Linear(5, 8, dtype=dtype), Activation(tanh), Linear(8, 2, dtype=dtype)])


def train(net, optimizer, steps, x=X, y=Y):
    x, y, cost = toDevice(x, dtype=net[0].W.dtype), toDevice(y, dtype=net[0].W.dtype), MSE()
    for _ in range(steps):
        _, grad = cost(net(x), y)
        optimizer.zeroGradParams()
        net.backward(grad)
        optimizer.update()


def params(net):
    return {name: toHost(var.data).copy() for name, var in net.getVarTable().items()}


OPTIMIZERS = {"SGD": lambda: SGD(learnRate=0.05), "AdaGrad": lambda: AdaGrad(learnRate=0.05)}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_local_and_global_state_give_the_same_parameters(name):
    results = []
    for useGlobalState in (False, True):
        net = makeNet()
        net[2].vars["W"].learnRate = 0.5  # a stretch of its own inside the flat buffer
        train(net, OPTIMIZERS[name]().setupOn(net, useGlobalState=useGlobalState), steps=20)
        results.append(params(net))
    for key in results[0]:
        numpy.testing.assert_allclose(results[0][key], results[1][key], rtol=1e-6, atol=1e-7, err_msg=key)


def test_global_state_makes_variables_views_of_one_buffer_per_dtype():
    net = makeNet()
    optimizer = AdaGrad().setupOn(net, useGlobalState=True)
    (group,) = optimizer.groups
    assert group.param.size == net.numOfParams() and group.grad.size == net.numOfParams()
    group.param[...] = backend.xp.arange(group.param.size)
    group.grad[...] = -backend.xp.arange(group.grad.size)
    variables = net.getVarTable().values()
    numpy.testing.assert_array_equal(numpy.concatenate([toHost(v.data).ravel() for v in variables]),
                                     numpy.arange(net.numOfParams()))
    numpy.testing.assert_array_equal(numpy.concatenate([toHost(v.grad).ravel() for v in variables]),
                                     -numpy.arange(net.numOfParams()))


def test_global_state_keeps_values_and_accumulated_gradients():
    net = makeNet()
    before = params(net)
    net(toDevice(X))
    net.backward(toDevice(numpy.ones((16, 2), numpy.float32)))
    gradsBefore = {name: toHost(var.grad).copy() for name, var in net.getVarTable().items()}
    AdaGrad().setupOn(net, useGlobalState=True)
    for name, var in net.getVarTable().items():
        numpy.testing.assert_array_equal(toHost(var.data), before[name])
        numpy.testing.assert_array_equal(toHost(var.grad), gradsBefore[name])


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_adagrad_follows_its_formula_in_float64(useGlobalState):
    net = makeNet(dtype=numpy.float64)
    net[0].vars["b"].learnRate = 2.0
    learnRate, epsilon = 0.03, 1e-8
    optimizer = AdaGrad(learnRate=learnRate, epsilon=epsilon).setupOn(net, useGlobalState=useGlobalState)
    expected = params(net)
    h = {name: numpy.zeros_like(value) for name, value in expected.items()}
    x = toDevice(X, dtype=numpy.float64)
    for step in range(5):
        optimizer.learnRate = learnRate * (step + 1)  # a change between steps takes effect at once
        net(x)
        optimizer.zeroGradParams()
        net.backward(toDevice(numpy.full((16, 2), 0.1)))
        for name, var in net.getVarTable().items():
            grad = toHost(var.grad)
            rate = optimizer.learnRate * var.learnRate  # float64 exact: no float32 rounding of the hyperparameters
            h[name] += grad**2
            expected[name] -= rate * grad / (numpy.sqrt(h[name]) + epsilon)
        optimizer.update()
        for name, value in params(net).items():
            numpy.testing.assert_allclose(value, expected[name], rtol=1e-14, atol=1e-16, err_msg=f"{name} step {step}")


def test_adagrad_state_table_holds_summed_squared_gradients():
    net = makeNet(dtype=numpy.float64)
    optimizer = AdaGrad().setupOn(net, useGlobalState=True)
    total = {name: 0 for name in net.getVarTable()}
    for _ in range(3):
        optimizer.zeroGradParams()
        net(toDevice(X, dtype=numpy.float64))
        net.backward(toDevice(numpy.ones((16, 2))))
        for name, var in net.getVarTable().items():
            total[name] = total[name] + toHost(var.grad) ** 2
        optimizer.update()
    table = optimizer.getStateTable()
    assert sorted(table) == sorted(f"{name}.h" for name in total)
    for name, value in total.items():
        numpy.testing.assert_allclose(toHost(table[f"{name}.h"]), value, rtol=1e-12)


def test_gradients_accumulate_until_zeroed():
    net = makeNet()
    optimizer = SGD().setupOn(net, useGlobalState=True)
    for _ in range(2):
        net(toDevice(X))
        net.backward(toDevice(numpy.ones((16, 2), numpy.float32)))
    twice = toHost(net[2].vars["b"].grad)
    numpy.testing.assert_allclose(twice, numpy.full(2, 32.0))
    optimizer.zeroGradParams()
    assert not toHost(optimizer.groups[0].grad).any()


def test_mixed_dtypes_get_one_group_each():
    net = Sequential().extend([Linear(5, 4), Linear(4, 2, dtype=numpy.float64)])
    optimizer = SGD().setupOn(net, useGlobalState=True)
    assert sorted(str(group.param.dtype) for group in optimizer.groups) == ["float32", "float64"]


def test_update_before_setup_is_an_error():
    with pytest.raises(OptimizerError, match="before setupOn"):
        AdaGrad().update()
    with pytest.raises(OptimizerError, match="before setupOn"):
        AdaGrad().zeroGradParams()


def test_rebinding_a_variable_after_setup_is_an_error():
    net = makeNet()
    optimizer = SGD().setupOn(net, useGlobalState=True)
    net[0].vars["W"].data = net[0].W.copy()
    with pytest.raises(OptimizerError, match="0.W.*setupOn again"):
        optimizer.update()


@pytest.mark.parametrize("make", [lambda: SGD(learnRate=-1), lambda: AdaGrad(epsilon=0),
                                  lambda: AdaGrad(epsilon=-1e-8)])
def test_bad_hyperparameters(make):
    with pytest.raises(OptimizerError, match="must lie in"):
        make()


@pytest.mark.parametrize("value", [numpy.complex128(0.1 + 2j), 0.1 + 0j, "0.1", True, float("nan")])
def test_a_hyperparameter_must_be_a_real_number(value):
    """A NumPy complex was once taken for its real part, with only a ComplexWarning."""
    with pytest.raises(OptimizerError, match="learnRate must be a finite real number"):
        SGD(learnRate=value)


def test_bad_learning_rate_change_keeps_the_old_one():
    optimizer = SGD(learnRate=0.1)
    with pytest.raises(OptimizerError):
        optimizer.learnRate = -0.5
    assert optimizer.learnRate == 0.1


def test_nodeinfo_must_be_a_nodeinfo_and_needs_global_state():
    with pytest.raises(OptimizerError, match="must be a minidl.distributed.NodeInfo"):
        AdaGrad(nodeinfo=object())
    pytest.importorskip("mpi4py", reason="the mpi extra is not installed")
    from minidl.distributed import NodeInfo

    with pytest.raises(OptimizerError, match="useGlobalState=True"):
        AdaGrad(nodeinfo=NodeInfo()).setupOn(makeNet())


def test_a_setup_that_nodeinfo_refuses_keeps_the_optimizer_on_its_module(monkeypatch):
    pytest.importorskip("mpi4py", reason="the mpi extra is not installed")
    from minidl.distributed import NodeInfo, nodeinfo

    if backend.isGpu:
        pytest.skip("NCCL carries float16: the refusal below is MPI's")
    monkeypatch.setattr(nodeinfo, "MPI_TYPES", {numpy.dtype(numpy.float32)})  # a transport that carries no float16
    net, half = makeNet(), makeNet(dtype=numpy.float16)
    optimizer = SGD(learnRate=0.1, nodeinfo=NodeInfo()).setupOn(net, useGlobalState=True)
    with pytest.raises(MinidlError, match="float16"):
        optimizer.setupOn(half, useGlobalState=True)
    assert optimizer.module is net
    assert [group.param.dtype for group in optimizer.groups] == [numpy.float32]
    before = params(net)
    train(net, optimizer, steps=1)  # still steps the network it was set up on
    assert all(numpy.abs(params(net)[name] - before[name]).max() > 0 for name in before)


def test_setup_on_something_else_is_an_error():
    with pytest.raises(OptimizerError, match="expects a Module"):
        SGD().setupOn([1, 2])
    with pytest.raises(OptimizerError, match="no Variables"):
        SGD().setupOn(Sequential().append(Activation(tanh)))


@pytest.mark.parametrize("option", ["useGlobalState", "masterWeights"])
def test_setup_flags_must_be_booleans(option):
    """useGlobalState="no" once chose global state; nothing is changed by a refused setup."""
    net = makeNet()
    before = {name: var.data for name, var in net.getVarTable().items()}
    with pytest.raises(OptimizerError, match=f"{option} must be True or False, got 'no'"):
        SGD().setupOn(net, **{option: "no"})
    assert all(var.data is before[name] for name, var in net.getVarTable().items())


def snapshot(net, optimizer):
    """Host copies of the parameters, gradients and optimizer state."""
    grads = {name: toHost(var.grad).copy() for name, var in net.getVarTable().items()}
    return params(net), grads, {name: toHost(array).copy() for name, array in optimizer.getStateTable().items()}


@pytest.mark.parametrize("useGlobalState", [False, True])
@pytest.mark.parametrize("attr, value", [("learnRate", "0.5"), ("learnRate", -1.0), ("learnRate", float("nan")),
                                         ("wc", None), ("wc", -0.5)])
def test_a_bad_per_variable_scale_is_refused_before_the_step_changes_anything(useGlobalState, attr, value):
    net = makeNet()
    optimizer = AdaGrad(learnRate=0.05).setupOn(net, useGlobalState=useGlobalState).addHook(WeightDecay(0.1))
    train(net, optimizer, steps=2)
    setattr(net[2].vars["W"], attr, value)  # the last Variable: every other one would be stepped first
    before = snapshot(net, optimizer)
    with pytest.raises(OptimizerError, match=f"Variable '2.W' {attr}"):
        optimizer.update()
    after = snapshot(net, optimizer)
    for expected, actual in zip(before, after):
        for name in expected:
            numpy.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    assert optimizer.t == 2


def test_local_state_refuses_a_variable_that_is_not_contiguous_at_setup():
    """The kernels need C-contiguous arrays: found at update() instead, the Variables before it were stepped."""
    net = makeNet()
    var = net[2].vars["W"]
    var.data = backend.xp.asfortranarray(var.data)
    with pytest.raises(OptimizerError, match="2.W.*C-contiguous"):
        SGD().setupOn(net)
    optimizer = SGD(learnRate=0.05).setupOn(net, useGlobalState=True)  # copied into the flat buffer: fine
    assert var.data.flags.c_contiguous
    train(net, optimizer, steps=1)
