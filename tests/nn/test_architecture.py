"""The network in its file: module files and checkpoints carry the architecture, and minidl.load rebuilds the
network with its weights from the file alone (identical outputs), refusing what the registry does not know."""

import json

import numpy
import pytest

import minidl
from minidl.backend import getRandomState, seed, toDevice, toHost
from minidl.errors import CheckpointError, ModuleError
from minidl.models import LANGUAGE_MODELS, MODELS
from minidl.nn import (
    Activation,
    Add,
    AvgPool1D,
    Cast,
    Concat,
    Graph,
    Linear,
    MaxPool1D,
    Module,
    Parallel,
    PositionalEmbedding,
    Sequential,
    Split,
    leakyRelu,
    relu,
    tanh,
)
from minidl.nn.rebuild import register
from minidl.optim import SGD
from minidl.tensorfile import writeTensors
from minidl.train.checkpoint import saveCheckpoint


def perturbed(net):
    """Move every weight off its initial value, so that a rebuilt network with fresh weights cannot pass."""
    for var in net.getVarTable().values():
        var.set(var.data + 0.25 * toDevice(numpy.random.default_rng(0).standard_normal(var.data.shape)
                                          .astype(var.data.dtype)))
    return net


def assertSameOutputs(net, loaded, data):
    assert type(loaded) is type(net)
    assert list(loaded.getArrayTable()) == list(net.getArrayTable())
    net.evalMode()
    loaded.evalMode()
    expected, actual = net(data), loaded(data)
    expected = expected if isinstance(expected, list) else [expected]
    actual = actual if isinstance(actual, list) else [actual]
    for left, right in zip(expected, actual):
        assert numpy.array_equal(toHost(left), toHost(right))


def sharedGraph():
    """Two inputs, a Linear shared by two nodes, a Split read output by output, a Concat, two outputs."""
    shared = Linear(4, 6, name="shared")
    left, right = Identity4("left").node(), Identity4("right").node()
    a, b = shared.node(left), shared.node(Activation(tanh).node(right))
    split = Split(1, [2, 4]).node(Add().node(a, b))
    joined = Concat(axis=1).node(split[1], Activation(leakyRelu, args=(0.3,)).node(split[0]))
    outputs = [Linear(6, 3, name="head").node(joined), Activation(relu).node(split[0])]
    return Graph(inputs=[left, right], outputs=outputs)


def Identity4(name):
    from minidl.nn import Identity

    return Identity(name=name)


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("kind", ["module", "checkpoint"])
def test_every_builder_round_trips_through_its_file_alone(tmp_path, model, kind):
    seed(3)
    spec = MODELS[model]
    shape = (64,) if spec.flat else (1, 8, 8)
    net = perturbed(spec.build(shape, 10))
    path = tmp_path / "net.safetensors"
    if kind == "module":
        net.save(path)
    else:
        optimizer = SGD(learnRate=0.1)
        optimizer.setupOn(net)
        saveCheckpoint(path, net, optimizer, epoch=2)
    data = toDevice(numpy.random.default_rng(1).standard_normal((3, *shape)).astype(numpy.float32))
    assertSameOutputs(net, minidl.load(path), data)


@pytest.mark.parametrize("model", sorted(LANGUAGE_MODELS))
def test_language_models_round_trip(tmp_path, model):
    seed(4)
    options = {"lstm": {"embed": 8, "hidden": 12}, "transformer": {"embed": 8, "heads": 2, "maxLength": 16}}[model]
    net = perturbed(LANGUAGE_MODELS[model](11, **options))
    net.save(tmp_path / "lm")
    codes = toDevice(numpy.random.default_rng(2).integers(0, 11, (6, 2)).astype(numpy.int32))
    assertSameOutputs(net, minidl.load(tmp_path / "lm"), codes)


def test_a_graph_with_shared_modules_round_trips_and_stays_shared(tmp_path):
    seed(5)
    net = perturbed(sharedGraph())
    net.save(tmp_path / "g")
    loaded = minidl.load(tmp_path / "g")
    rng = numpy.random.default_rng(3)
    data = [toDevice(rng.standard_normal((5, 4)).astype(numpy.float32)) for _ in range(2)]
    assertSameOutputs(net, loaded, data)
    sharedNodes = [node for node in loaded.nodes if node.module.name == "shared"]
    assert len(sharedNodes) == 2 and sharedNodes[0].module is sharedNodes[1].module
    assert [node.module.name for node in loaded.inputs] == ["left", "right"]


def test_a_parallel_of_one_module_twice_stays_shared_and_loading_keeps_the_random_stream(tmp_path):
    shared = Linear(3, 3, name="shared")
    net = perturbed(Parallel(shared, Sequential(Activation(tanh), shared), Linear(2, 1)))
    net.save(tmp_path / "p")
    state = getRandomState()
    loaded = minidl.load(tmp_path / "p")
    assert getRandomState() == state
    assert loaded[0] is loaded[1][1] and list(loaded.getVarTable()) == ["shared.W", "shared.b", "2.W", "2.b"]
    rng = numpy.random.default_rng(4)
    data = [toDevice(rng.standard_normal(shape).astype(numpy.float32)) for shape in ((2, 3), (2, 3), (2, 2))]
    assertSameOutputs(net, loaded, data)


@pytest.mark.parametrize("pool", [MaxPool1D, AvgPool1D])
def test_a_1d_pool_round_trips_with_the_arguments_it_was_given(tmp_path, pool):
    """Pool1D's constructor (a mixin's) is the one recorded, not the 2-D pool's it calls with (1, size) pairs."""
    net = Sequential(pool(3, 2, 1, ceilMode=True))
    net.save(tmp_path / "pool")
    data = toDevice(numpy.random.default_rng(5).standard_normal((2, 3, 8)).astype(numpy.float32))
    assertSameOutputs(net, minidl.load(tmp_path / "pool"), data)


def test_dtypes_and_calc_mode_are_kept(tmp_path):
    net = perturbed(Sequential(Cast(numpy.float64), Linear(3, 4), Activation(relu), Linear(4, 2)).calcMode("float64"))
    net.modules[0] = Cast(numpy.float64)  # calcMode leaves Cast alone; the input is float32
    net.save(tmp_path / "f64")
    loaded = minidl.load(tmp_path / "f64")
    assert {var.data.dtype for var in loaded.getVarTable().values()} == {numpy.dtype(numpy.float64)}
    assertSameOutputs(net, loaded, toDevice(numpy.ones((2, 3), numpy.float32)))


def test_calc_mode_of_a_module_without_parameters_is_kept(tmp_path):
    """A sinusoidal PositionalEmbedding has no parameter, so no dtype was recorded: after calcMode("float64") it
    was rebuilt with a float32 table and refused the float64 input the saved network took."""
    net = Sequential(PositionalEmbedding(6, 4, learned=False), Linear(4, 2)).calcMode("float64")
    net.save(tmp_path / "p64")
    loaded = minidl.load(tmp_path / "p64")
    assert loaded[0].table.dtype == numpy.float64
    assertSameOutputs(net, loaded, toDevice(numpy.random.default_rng(6).standard_normal((5, 3, 4))))


def test_sequential_records_modules_appended_after_construction(tmp_path):
    net = Sequential(Linear(2, 3))
    net.append(Activation(relu)).append(Linear(3, 1, useBias=False, name="out"))
    net.save(tmp_path / "s")
    loaded = minidl.load(tmp_path / "s")
    assert [type(module).__name__ for module in loaded.modules] == ["Linear", "Activation", "Linear"]
    assert loaded.modules[2].name == "out" and "out.b" not in loaded.getVarTable()


class Scale(Module):
    """y = factor · x, a custom module of a user's own."""

    def __init__(self, factor, name=None):
        super().__init__(name)
        self.factor = factor

    def updData(self, data):
        return data * self.factor

    def updGrad(self, grad):
        return grad * self.factor


def test_a_custom_module_is_refused_until_it_registers(tmp_path):
    net = Sequential(Linear(2, 2), Scale(3.0))
    net.save(tmp_path / "custom")
    with pytest.raises(CheckpointError, match="Scale is not registered"):
        minidl.load(tmp_path / "custom")
    register(Scale)
    net.save(tmp_path / "custom")
    loaded = minidl.load(tmp_path / "custom")
    assert isinstance(loaded.modules[1], Scale) and loaded.modules[1].factor == 3.0
    with pytest.raises(ModuleError, match="registered already"):
        register(Linear, "Scale")


def test_an_unregistered_function_argument_is_reported_when_loading(tmp_path):
    class Apply(Module):
        def __init__(self, function):
            super().__init__()
            self.function = function

    register(Apply, "tests.Apply")
    Sequential(Linear(2, 2), Apply(numpy.sin)).save(tmp_path / "f")
    with pytest.raises(CheckpointError, match="cannot hold"):
        minidl.load(tmp_path / "f")


def test_weights_tied_with_set_var_are_reported_when_loading(tmp_path):
    """Two modules given one Variable (setVar) save it once: the architecture, which rebuilds them untied, would
    want the second's tensor, and minidl.load refused the file as if it lacked one. It now names the cause, and
    the network built in code still loads its file."""

    def tied():
        first, second = Linear(3, 3), Linear(3, 3)
        second.setVar("W", first.vars["W"])
        return Sequential(first, Activation(tanh), second)

    net = perturbed(tied())
    assert list(net.getVarTable()) == ["0.W", "0.b", "2.b"]
    net.save(tmp_path / "tied")
    with pytest.raises(CheckpointError, match=r"Linear.*'W' is also the Variable of Linear.*setVar"):
        minidl.load(tmp_path / "tied")
    same = tied().load(tmp_path / "tied")
    assertSameOutputs(net, same, toDevice(numpy.ones((2, 3), numpy.float32)))


def forged(tmp_path, architecture):
    """A module file of one Linear(2, 2)'s tensors whose architecture entry is ``architecture``."""
    path = tmp_path / "forged"
    tensors = {"W": numpy.zeros((2, 2), numpy.float32), "b": numpy.zeros(2, numpy.float32)}
    metadata = {"format": "minidl.module"}
    if architecture is not None:
        metadata["architecture"] = json.dumps(architecture)
    writeTensors(path, tensors, metadata)
    return path


@pytest.mark.parametrize("items, match", [
    ([{"module": "os.system", "args": ["true"], "kwargs": {}}], "unknown module type 'os.system'"),
    ([{"module": "Activation", "args": [{"$function": "eval"}], "kwargs": {}}], "unknown function 'eval'"),
    ([{"module": "Sequential", "args": [[{"$ref": 0}]], "kwargs": {}}], "not the index of an item before it"),
    ([{"module": "Linear", "args": [{"$pickle": "gASV"}], "kwargs": {}}], "tagged '\\$pickle'"),
    ([{"module": "Linear", "args": [2, -1], "kwargs": {}}], "Linear refuses its arguments"),
    ([{"module": "Reshape", "args": [5], "kwargs": {}}], "Reshape refuses its arguments: ModuleError: Reshape shape"),
    ([{"module": "Linear", "args": [2], "kwargs": {}}], "Linear refuses its arguments: TypeError"),
    ([{"module": "Identity", "args": [], "kwargs": {}, "name": 3}], "name must be a string"),
])
def test_a_file_naming_what_the_registry_does_not_know_is_refused(tmp_path, items, match):
    path = forged(tmp_path, {"version": 1, "root": 0, "items": items})
    with pytest.raises(CheckpointError, match=match):
        minidl.load(path)


def test_a_file_without_architecture_or_with_other_tensors_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="carries no architecture"):
        minidl.load(forged(tmp_path, None))
    wrong = {"version": 1, "root": 0, "items": [{"module": "Linear", "args": [2, 3], "kwargs": {}}]}
    with pytest.raises(CheckpointError, match=r"tensor W is float32 \(2, 2\).*\(2, 3\)"):
        minidl.load(forged(tmp_path, wrong))


def test_the_architecture_is_inside_the_checksum(tmp_path):
    Linear(2, 2).save(tmp_path / "m")
    raw = (tmp_path / "m").read_bytes()
    assert raw.count(b'args\\":[2,2]') == 1  # inside the header's JSON, the metadata is an escaped string
    (tmp_path / "m").write_bytes(raw.replace(b'args\\":[2,2]', b'args\\":[2,3]'))
    with pytest.raises(CheckpointError, match="damaged"):
        minidl.load(tmp_path / "m")
