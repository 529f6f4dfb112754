"""optimizer.save/load for every optimizer minidl.optim exports: a reloaded run continues bit for bit, in
local or global state, and a file that does not fit changes nothing."""

import numpy
import pytest

import minidl.optim
from minidl.backend import seed, toDevice, toHost
from minidl.cost import MSE
from minidl.errors import CheckpointError, OptimizerError
from minidl.nn import Activation, Linear, Sequential, tanh
from minidl.optim import SGD, AdaGrad, Optimizer
from minidl.tensorfile import readTensors, writeTensors
from tests.safetensorsreader import readSafetensors

OPTIMIZERS = [
    cls for cls in (getattr(minidl.optim, name) for name in minidl.optim.__all__)
    if isinstance(cls, type) and issubclass(cls, Optimizer) and cls is not Optimizer
]

rng = numpy.random.default_rng(4)
DATA = toDevice(rng.standard_normal((8, 3)).astype(numpy.float32))
TARGET = toDevice(rng.standard_normal((8, 2)).astype(numpy.float32))


def net():
    return Sequential().extend([Linear(3, 5), Activation(tanh), Linear(5, 2)])


def steps(module, optimizer, count):
    for _ in range(count):
        _, grad = MSE()(module(DATA), TARGET)
        optimizer.zeroGradParams()
        module.backward(grad)
        optimizer.update()


def params(module):
    return {name: toHost(var.data).copy() for name, var in module.getVarTable().items()}


def state(optimizer):
    return {name: toHost(array).copy() for name, array in optimizer.getStateTable().items()}


def test_every_optimizer_is_covered():
    assert {SGD, AdaGrad} <= set(OPTIMIZERS)


@pytest.mark.parametrize("savedGlobal, loadedGlobal", [(False, True), (True, False)])
@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda cls: cls.__name__)
def test_a_reloaded_run_continues_exactly(tmp_path, cls, savedGlobal, loadedGlobal):
    seed(1)
    module = net()
    optimizer = cls().setupOn(module, useGlobalState=savedGlobal)
    steps(module, optimizer, 3)
    module.save(tmp_path / "m.safetensors")
    optimizer.save(tmp_path / "o.safetensors")
    savedAttrs = optimizer.getAttrDict()
    steps(module, optimizer, 3)

    seed(2)
    resumed = net()
    other = cls().setupOn(resumed, useGlobalState=loadedGlobal)
    if "learnRate" in savedAttrs:
        other.learnRate = 0.5 * other.learnRate + 0.125  # differs from the saved value, which load restores
    resumed.load(tmp_path / "m.safetensors")
    assert other.load(tmp_path / "o.safetensors") is other
    assert other.getAttrDict() == savedAttrs
    steps(resumed, other, 3)
    straight, continued = params(module), params(resumed)
    for name in straight:
        numpy.testing.assert_array_equal(continued[name], straight[name], err_msg=name)
    for name, value in state(optimizer).items():
        numpy.testing.assert_array_equal(state(other)[name], value, err_msg=name)


def test_the_state_tensors_are_named_by_variable_and_state(tmp_path):
    module = net()
    optimizer = AdaGrad(learnRate=0.05).setupOn(module, useGlobalState=True)
    steps(module, optimizer, 2)
    optimizer.save(tmp_path / "o.safetensors")
    tensors, metadata = readSafetensors(tmp_path / "o.safetensors")
    assert sorted(tensors) == ["0.W.h", "0.b.h", "2.W.h", "2.b.h"]
    numpy.testing.assert_array_equal(tensors["2.W.h"], toHost(optimizer.getStateTable()["2.W.h"]))
    assert tensors["0.W.h"].min() > 0, "h sums squared gradients"
    assert metadata["format"] == "minidl.optimizer" and metadata["optimizer"] == "AdaGrad"
    assert metadata["attrs"] == '{"learnRate": 0.05, "epsilon": 1e-08, "t": 2, "skippedSteps": 0}'


def saveAdaGrad(path, module=None):
    module = module or net()
    optimizer = AdaGrad().setupOn(module)
    steps(module, optimizer, 1)
    optimizer.save(path)


@pytest.mark.parametrize("case", ["another class", "another network", "a module file", "foreign"])
def test_a_file_that_does_not_fit_is_refused_and_changes_nothing(tmp_path, case):
    path = tmp_path / "o.safetensors"
    module = net()
    optimizer = AdaGrad(learnRate=0.02).setupOn(module)
    steps(module, optimizer, 2)
    if case == "another class":
        SGD().setupOn(net()).save(path)
    elif case == "another network":
        saveAdaGrad(path, Sequential().append(Linear(3, 2)))
    elif case == "a module file":
        module.save(path)
    else:
        path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}              ")
    before, attrs = state(optimizer), optimizer.getAttrDict()
    with pytest.raises(CheckpointError):
        optimizer.load(path)
    assert optimizer.getAttrDict() == attrs
    for name, value in state(optimizer).items():
        numpy.testing.assert_array_equal(value, before[name])


def test_an_attribute_the_optimizer_refuses_rolls_every_attribute_back(tmp_path):
    path = tmp_path / "o.safetensors"
    saveAdaGrad(path)
    tensors, metadata = readTensors(path, "minidl.optimizer")
    # epsilon and t are set before learnRate fails
    metadata["attrs"] = '{"epsilon": 0.5, "t": 7, "skippedSteps": 0, "learnRate": -1.0}'
    writeTensors(path, tensors, metadata)
    optimizer = AdaGrad(learnRate=0.3, epsilon=0.25).setupOn(net())
    with pytest.raises(CheckpointError, match="learnRate must lie in"):
        optimizer.load(path)
    assert optimizer.getAttrDict() == {"learnRate": 0.3, "epsilon": 0.25, "t": 0, "skippedSteps": 0}


def test_load_before_setup_is_an_optimizer_error(tmp_path):
    saveAdaGrad(tmp_path / "o.safetensors")
    with pytest.raises(OptimizerError, match="before setupOn"):
        AdaGrad().load(tmp_path / "o.safetensors")
