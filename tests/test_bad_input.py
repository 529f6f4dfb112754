"""Bad input raises a clear minidl exception before anything changes: parameters, gradients and optimizer
state are exactly as they were."""

import numpy
import pytest

from minidl import BackendError, CostError, MinidlError, ModuleError, OptimizerError, backend
from minidl.backend import readChecks, toDevice, toHost
from minidl.cost import MSE, CrossEntropy
from minidl.models import MODELS
from minidl.nn import Activation, Add, BatchNorm, Graph, Linear, Sequential, relu
from minidl.optim import AdaGrad


def snapshot(net, optimizer):
    state = {name: toHost(var.data).copy() for name, var in net.getVarTable().items()}
    state.update({name + ".grad": toHost(var.grad).copy() for name, var in net.getVarTable().items()})
    state.update({name: toHost(array).copy() for name, array in optimizer.getStateTable().items()})
    return state


@pytest.fixture
def trained():
    """A net after two AdaGrad steps, with gradients left in place."""
    backend.seed(4)
    net = Sequential().extend([Linear(3, 4), Activation(relu), Linear(4, 2)])
    optimizer = AdaGrad(learnRate=0.1).setupOn(net, useGlobalState=True)
    x, y = toDevice(numpy.ones((5, 3), numpy.float32)), toDevice(numpy.zeros((5, 2), numpy.float32))
    for _ in range(2):
        _, grad = MSE()(net(x), y)
        optimizer.zeroGradParams()
        net.backward(grad)
        optimizer.update()
    return net, optimizer


def assertUnchanged(before, after):
    assert before.keys() == after.keys()
    for key in before:
        numpy.testing.assert_array_equal(before[key], after[key], err_msg=key)


def device(shape, dtype=numpy.float32):
    return toDevice(numpy.ones(shape, dtype))


CASES = {
    "wrong input shape to Linear": (lambda net: net(device((5, 7))), ModuleError, r"shape \(batch, 3\)"),
    "input of the wrong rank": (lambda net: net(device((5,))), ModuleError, "2 dimensions"),
    "mixed dtypes (float64 input to float32 layer)": (
        lambda net: net(device((5, 3), numpy.float64)), ModuleError, "dtype float32"),
    "host list instead of an array": (lambda net: net([[1.0, 2.0, 3.0]]), ModuleError, "array"),
    "gradient of the wrong shape": (
        lambda net: (net(device((5, 3))), net.backward(device((5, 3))))[1], ModuleError, r"\(5, 2\)"),
    "gradient of the wrong dtype": (
        lambda net: (net(device((5, 3))), net.backward(device((5, 2), numpy.float64)))[1], ModuleError, "float32"),
    "wrong target shape to a cost": (lambda net: MSE()(net(device((5, 3))), device((5, 1))), CostError, r"\(5, 2\)"),
    "label out of range": (  # raised at the call on the CPU, at the read of the device checks on a GPU
        lambda net: (CrossEntropy()(net(device((5, 3))), toDevice(numpy.array([0, 1, 2, 0, 1]))), readChecks()),
        CostError, "out of range"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_leaves_everything_unchanged(trained, case):
    net, optimizer = trained
    call, error, message = CASES[case]
    before = snapshot(net, optimizer)
    with pytest.raises(error, match=message):
        call(net)
    assertUnchanged(before, snapshot(net, optimizer))


def test_a_mixed_dtype_kernel_call_changes_nothing():
    grad, param, h = numpy.ones(4, numpy.float64), numpy.ones(4, numpy.float32), numpy.zeros(4, numpy.float32)
    from minidl.optim.adagrad import adagradRule

    with pytest.raises(BackendError, match="mixed dtypes"):
        adagradRule.direct(grad, numpy.ones(1, numpy.float32), numpy.zeros(1, numpy.int32), 0.1, 1e-8, param, h)
    assert (param == 1).all() and (h == 0).all()


def test_every_error_is_a_minidl_error():
    for error in (BackendError, CostError, ModuleError, OptimizerError):
        assert issubclass(error, MinidlError)


def test_update_before_setup_changes_nothing():
    net = Sequential().append(Linear(2, 2))
    before = toHost(net[0].W).copy()
    with pytest.raises(OptimizerError):
        AdaGrad().update()
    numpy.testing.assert_array_equal(toHost(net[0].W), before)


def buffers(net):
    return {name: toHost(array).copy() for name, array in net.getBufferTable().items()}


def test_a_forward_refused_past_a_batchnorm_leaves_its_running_statistics_unchanged():
    """The cnn's BatchNorm2D accepts 16x16 images; the Linear after Flatten refuses them: the call fails
    after BatchNorm2D ran, and its running statistics must be as they were."""
    backend.seed(0)
    net = MODELS["cnn"].build((1, 8, 8), 10)
    net(toDevice(numpy.random.default_rng(0).standard_normal((4, 1, 8, 8)), numpy.float32))
    before = buffers(net)
    with pytest.raises(ModuleError, match=r"shape \(batch, 64\)"):
        net(toDevice(numpy.ones((4, 1, 16, 16), numpy.float32)))
    assertUnchanged(before, buffers(net))


def test_a_graph_refusing_its_second_input_leaves_the_first_branch_statistics_unchanged():
    first, second = BatchNorm(3).node(), Linear(2, 3).node()
    net = Graph(inputs=[first, second], outputs=Add().node(first, second))
    before = buffers(net)
    with pytest.raises(ModuleError, match=r"shape \(batch, 2\)"):
        net([toDevice(numpy.arange(12.0).reshape(4, 3), numpy.float32), device((4, 5))])
    assertUnchanged(before, buffers(net))
