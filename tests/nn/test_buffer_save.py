"""Buffers (BatchNorm's running statistics) are saved and loaded with the parameters: by module.save/load
and by checkpoints, under the names of getArrayTable()."""

import numpy
import pytest

from minidl.backend import seed, toDevice, toHost
from minidl.errors import CheckpointError
from minidl.nn import Activation, BatchNorm, Linear, Sequential, relu
from minidl.optim import AdaGrad
from minidl.tensorfile import readTensors, writeTensors
from minidl.train import loadCheckpoint, saveCheckpoint
from tests.safetensorsreader import readSafetensors


def trainedNet(seedValue):
    seed(seedValue)
    net = Sequential().extend([Linear(3, 4), BatchNorm(4), Activation(relu), Linear(4, 2)])
    for _ in range(3):  # trainMode forward passes move the running statistics away from 0 and 1
        net(toDevice(numpy.random.default_rng(seedValue).standard_normal((8, 3)) * 3 + 1, dtype=numpy.float32))
    return net


def hostArrays(module):
    return {name: toHost(array).copy() for name, array in module.getArrayTable().items()}


def test_module_save_and_load_carry_the_running_statistics(tmp_path):
    source, target = trainedNet(1), trainedNet(2)
    source.save(tmp_path / "m.safetensors")
    tensors, _ = readSafetensors(tmp_path / "m.safetensors")
    assert {"1.mean", "1.var", "1.scale", "1.bias"} <= set(tensors)
    numpy.testing.assert_array_equal(tensors["1.var"], toHost(source[1].runningVar))
    target.load(tmp_path / "m.safetensors")
    saved, loaded = hostArrays(source), hostArrays(target)
    assert list(loaded) == list(saved)
    for name in saved:
        numpy.testing.assert_array_equal(loaded[name], saved[name], err_msg=name)
    data = toDevice(numpy.ones((2, 3), numpy.float32))
    numpy.testing.assert_array_equal(toHost(target.evalMode()(data)), toHost(source.evalMode()(data)))


def test_a_checkpoint_carries_the_running_statistics(tmp_path):
    source, target = trainedNet(1), trainedNet(2)
    saveCheckpoint(tmp_path / "c.safetensors", source, AdaGrad().setupOn(source), epoch=3)
    tensors, _ = readSafetensors(tmp_path / "c.safetensors")
    numpy.testing.assert_array_equal(tensors["module.1.mean"], toHost(source[1].runningMean))
    loadCheckpoint(tmp_path / "c.safetensors", target, AdaGrad().setupOn(target))
    numpy.testing.assert_array_equal(toHost(target[1].runningMean), toHost(source[1].runningMean))
    numpy.testing.assert_array_equal(toHost(target[1].runningVar), toHost(source[1].runningVar))


@pytest.mark.parametrize(("buffer", "value", "message"), [
    ("1.var", -0.5, "running variance must be finite and >= 0"),
    ("1.var", numpy.nan, "running variance must be finite and >= 0"),
    ("1.var", numpy.inf, "running variance must be finite and >= 0"),
    ("1.mean", numpy.nan, "running mean holds NaN or infinity"),
])
@pytest.mark.parametrize("how", ["module", "checkpoint"])
def test_impossible_running_statistics_are_refused_and_change_nothing(tmp_path, buffer, value, message, how):
    path = tmp_path / "m.safetensors"
    source, target = trainedNet(1), trainedNet(2)
    optimizer = AdaGrad().setupOn(source)
    if how == "module":
        source.save(path)
    else:
        saveCheckpoint(path, source, optimizer, epoch=1)
    name = buffer if how == "module" else f"module.{buffer}"
    fileFormat = "minidl.module" if how == "module" else "minidl.checkpoint"
    tensors, metadata = readTensors(path, fileFormat)
    tensors[name][1] = value  # one entry: a checkpoint whose checksum is whole but whose state cannot be valid
    writeTensors(path, tensors, metadata)
    before = hostArrays(target)
    with pytest.raises(CheckpointError, match=rf"{path}: BatchNorm: the {message}"):
        if how == "module":
            target.load(path)
        else:
            loadCheckpoint(path, target, AdaGrad().setupOn(target))
    after = hostArrays(target)
    for key in before:
        numpy.testing.assert_array_equal(after[key], before[key], err_msg=key)
