"""module.save/load: parameters round-trip by name, in place, and a file that does not fit changes nothing."""

import numpy
import pytest

from minidl.backend import seed, toHost
from minidl.errors import CheckpointError
from minidl.nn import Activation, Add, Graph, Linear, Sequential, relu, tanh
from minidl.optim import SGD
from tests.safetensorsreader import readSafetensors


def mlp(hidden=5, dtype=numpy.float32, depth=1):
    net = Sequential()
    size = 3
    for _ in range(depth):
        net.extend([Linear(size, hidden, dtype=dtype), Activation(relu)])
        size = hidden
    return net.append(Linear(size, 2, dtype=dtype))


def graph():
    inp = Linear(3, 4, name="inp").node()
    left = Activation(tanh).node(inp)
    right = Linear(4, 4, name="right").node(inp)
    return Graph(inputs=inp, outputs=Linear(4, 2, name="out").node(Add().node(left, right)))


def params(module):
    return {name: toHost(var.data).copy() for name, var in module.getVarTable().items()}


@pytest.mark.parametrize("build", [mlp, graph], ids=["sequential", "graph"])
def test_round_trip_restores_every_parameter_under_its_name(tmp_path, build):
    seed(1)
    source = build()
    for var in source.getVarTable().values():
        var.set(var.data + 0.5)  # biases too, so zeros cannot pass by chance
    source.save(tmp_path / "m.safetensors")
    seed(2)
    target = build()
    assert not all(numpy.array_equal(a, b) for a, b in zip(params(source).values(), params(target).values()))
    assert target.load(tmp_path / "m.safetensors") is target
    saved, loaded = params(source), params(target)
    assert list(loaded) == list(saved)
    for name in saved:
        numpy.testing.assert_array_equal(loaded[name], saved[name])
    tensors, metadata = readSafetensors(tmp_path / "m.safetensors")
    assert metadata["format"] == "minidl.module" and sorted(tensors) == sorted(saved)
    for name in saved:
        numpy.testing.assert_array_equal(tensors[name], saved[name])


def test_load_writes_in_place_so_a_global_state_optimizer_keeps_its_views(tmp_path):
    seed(1)
    source = mlp()
    source.save(tmp_path / "m.safetensors")
    seed(2)
    target = mlp()
    optimizer = SGD(learnRate=0.1).setupOn(target, useGlobalState=True)
    target.load(tmp_path / "m.safetensors")
    numpy.testing.assert_array_equal(toHost(optimizer.groups[0].param), numpy.concatenate(
        [value.ravel() for value in params(source).values()]))
    optimizer.zeroGradParams()
    optimizer.update()  # raises if load had rebound a Variable


@pytest.mark.parametrize("other", [
    lambda: mlp(hidden=6),
    lambda: mlp(depth=2),
    lambda: mlp(dtype=numpy.float64),
    graph,
], ids=["shape", "names", "dtype", "another network"])
def test_a_file_of_another_network_is_refused_and_changes_nothing(tmp_path, other):
    seed(1)
    other().save(tmp_path / "other.safetensors")
    target = mlp()
    before = params(target)
    with pytest.raises(CheckpointError, match="other.safetensors"):
        target.load(tmp_path / "other.safetensors")
    for name, value in params(target).items():
        numpy.testing.assert_array_equal(value, before[name])


def test_an_optimizer_file_is_not_a_module_file(tmp_path):
    net = mlp()
    SGD().setupOn(net).save(tmp_path / "o.safetensors")
    with pytest.raises(CheckpointError, match="not a minidl.module file"):
        net.load(tmp_path / "o.safetensors")
