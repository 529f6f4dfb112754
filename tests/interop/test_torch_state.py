"""loadTorchStateDict / saveTorchStateDict without PyTorch: state dicts of NumPy arrays in PyTorch's layouts,
checked against the formulas written out here; every refusal names the mismatch and changes nothing."""

import numpy
import pytest
import safetensors.numpy

from minidl.backend import seed, toDevice, toHost
from minidl.errors import CheckpointError
from minidl.interop import loadTorchStateDict, saveTorchStateDict
from minidl.nn import Activation, BatchNorm, Dropout, Embedder, Graph, Identity, Linear, Sequential, relu
from minidl.nn.module import Module

rng = numpy.random.default_rng(9)


def normal(*shape):
    return rng.standard_normal(shape).astype(numpy.float32)


def torchStyleState():
    """What ``nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Dropout(), nn.Linear(4, 2))
    .state_dict()`` holds, in its order."""
    return {
        "0.weight": normal(4, 3), "0.bias": normal(4),
        "2.weight": normal(4), "2.bias": normal(4), "2.running_mean": normal(4),
        "2.running_var": rng.uniform(0.5, 2, 4).astype(numpy.float32), "2.num_batches_tracked": numpy.array(7),
        "4.weight": normal(2, 4), "4.bias": normal(2),
    }


def network():
    return Sequential().extend([Linear(3, 4), Activation(relu), BatchNorm(4), Dropout(), Linear(4, 2)])


def torchFormula(state, x):
    """The PyTorch network's eval-mode output, in float64: x Wᵀ + b, relu, normalised by running statistics."""
    x = x.astype(numpy.float64) @ state["0.weight"].T + state["0.bias"]
    x = numpy.maximum(x, 0)
    x = (x - state["2.running_mean"]) / numpy.sqrt(state["2.running_var"] + 1e-5) * state["2.weight"] + state["2.bias"]
    return x @ state["4.weight"].T + state["4.bias"]


def test_a_dict_in_pytorch_layout_gives_pytorch_outputs():
    state = torchStyleState()
    net = loadTorchStateDict(network(), state).evalMode()
    x = normal(5, 3)
    numpy.testing.assert_allclose(toHost(net(toDevice(x))), torchFormula(state, x), rtol=1e-5, atol=1e-6)
    numpy.testing.assert_array_equal(toHost(net[0].W), state["0.weight"].T)
    numpy.testing.assert_array_equal(toHost(net[2].runningVar), state["2.running_var"])


def test_a_file_round_trips_and_its_groups_come_in_natural_order(tmp_path):
    seed(1)
    layers = [Linear(2, 2, name=str(index)) for index in range(12)]  # prefixes 0..11: "10" sorts before "2"
    net = Sequential().extend(layers)
    saveTorchStateDict(net, tmp_path / "state.safetensors")
    stored = safetensors.numpy.load_file(tmp_path / "state.safetensors")
    assert sorted(stored) == sorted(f"{i}.{name}" for i in range(12) for name in ("weight", "bias"))
    numpy.testing.assert_array_equal(stored["10.weight"], toHost(layers[10].W).T)

    seed(2)
    other = Sequential().extend([Linear(2, 2, name=str(index)) for index in range(12)])
    loadTorchStateDict(other, tmp_path / "state.safetensors")
    for mine, theirs in zip(net.getArrayTable().values(), other.getArrayTable().values()):
        numpy.testing.assert_array_equal(toHost(mine), toHost(theirs))


def test_a_graph_and_an_embedder():
    inp = Embedder(6, 3).node()
    net = Graph(inputs=inp, outputs=Linear(3, 2).node(Identity().node(inp)))
    state = {"emb.weight": normal(6, 3), "fc.weight": normal(2, 3), "fc.bias": normal(2)}  # PyTorch's own names
    with pytest.raises(CheckpointError, match="pass match='order'"):
        loadTorchStateDict(net, state)
    loadTorchStateDict(net, state, match="order")
    indices = numpy.array([0, 5, 2, 2])
    expected = state["emb.weight"][indices] @ state["fc.weight"].T + state["fc.bias"]
    numpy.testing.assert_allclose(toHost(net(toDevice(indices))), expected, rtol=1e-5, atol=1e-6)


def snapshot(module):
    return {name: toHost(array).copy() for name, array in module.getArrayTable().items()}


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update({"4.weight": normal(4, 2)}), r"'4.weight' is float32 \(4, 2\), which is \(2, 4\) in "
                                                     r"minidl's layout; expected float32 \(4, 2\)"),
    (lambda s: s.update({"4.bias": s["4.bias"].astype(numpy.float64)}), "'4.bias' is float64"),
    (lambda s: s.pop("2.running_var"), r"BatchNorm at '2' against the state dict's '2': expected the tensors "
                                       r"\['weight', 'bias', 'running_mean', 'running_var'\]"),
    (lambda s: s.update({"5.weight": normal(1, 2)}),
     r"no layer of minidl's network \(3 with tensors\) takes: \['5.weight'\]"),
    (lambda s: [s.pop(k) for k in ("4.weight", "4.bias")], r"nothing for Linear at '4'"),
    (lambda s: s.update({"2.extra": normal(4)}), r"expected the tensors \['weight', 'bias', 'running_mean', "
                                                 r"'running_var'\], got \[.*'extra'\]"),
])
def test_a_mismatch_is_named_and_changes_nothing(change, message):
    net = network()
    before = snapshot(net)
    state = torchStyleState()
    change(state)
    with pytest.raises(CheckpointError, match=message):
        loadTorchStateDict(net, state)
    for name, array in snapshot(net).items():
        numpy.testing.assert_array_equal(array, before[name], err_msg=name)


class Scaled(Module):
    """A layer minidl does not know PyTorch's layout of."""

    def __init__(self):
        super().__init__()
        from minidl.variable import Variable

        self.setVar("s", Variable(toDevice(numpy.ones(2, numpy.float32))))


def test_bad_sources_and_unknown_layers(tmp_path):
    with pytest.raises(CheckpointError, match="no PyTorch state dict layout is known for it"):
        saveTorchStateDict(Sequential().append(Scaled()), tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="no state dict file at"):
        loadTorchStateDict(network(), tmp_path / "missing.safetensors")
    (tmp_path / "junk").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="is not a readable safetensors file"):
        loadTorchStateDict(network(), tmp_path / "junk")
    with pytest.raises(CheckpointError, match="maps names to NumPy arrays"):
        loadTorchStateDict(network(), {"0.weight": [[1.0]]})
    with pytest.raises(CheckpointError, match="a safetensors file path or a dict"):
        loadTorchStateDict(network(), 3)
