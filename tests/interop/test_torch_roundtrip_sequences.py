"""The sequence layers in both frameworks: every RNN mode (PyTorch's LSTM, GRU and RNN, whose weights minidl
keeps in PyTorch's layout and gate order), LayerNorm and MultiHeadAttention. PyTorch's weights in give PyTorch's
outputs; minidl's weights out give minidl's."""

import numpy
import pytest

from minidl.backend import seed, toDevice, toHost
from minidl.interop import loadTorchStateDict, saveTorchStateDict
from minidl.nn import RNN, LayerNorm, Linear, MultiHeadAttention, Sequential
from tests.optional import importSafetensorsTorch, importTorch

torch = importTorch()
safetensorsTorch = importSafetensorsTorch()
nn = torch.nn
rng = numpy.random.default_rng(4)


def sequencesOf(cls):
    """A PyTorch recurrent layer that returns its output sequence only, so that nn.Sequential can hold it."""

    class Sequences(cls):
        def forward(self, x):
            return super().forward(x)[0]

    return Sequences


TORCH_RNN = {"lstm": (nn.LSTM, {}), "gru": (nn.GRU, {}), "relu": (nn.RNN, {"nonlinearity": "relu"}),
             "tanh": (nn.RNN, {"nonlinearity": "tanh"})}


def rnnPair(mode):
    cls, options = TORCH_RNN[mode]
    torchNet = nn.Sequential(sequencesOf(cls)(3, 4, num_layers=2, bidirectional=True, **options), nn.Linear(8, 2))
    ours = Sequential(RNN(3, 4, layers=2, mode=mode, direction="bi", getSequences=True), Linear(8, 2))
    return torchNet, ours, rng.standard_normal((5, 2, 3)).astype(numpy.float32)


def randomiseTorch(torchNet):
    with torch.no_grad():
        for parameter in torchNet.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.5)


def torchOutput(torchNet, x):
    with torch.no_grad():
        return torchNet.eval()(torch.from_numpy(x)).numpy()


def oursOutput(net, x):
    return toHost(net.evalMode()(toDevice(x)))


@pytest.mark.parametrize("mode", sorted(TORCH_RNN))
def test_rnn_weights_in_and_out(tmp_path, mode):
    torch.manual_seed(1)
    seed(1)
    torchNet, ours, x = rnnPair(mode)
    randomiseTorch(torchNet)
    safetensorsTorch.save_file(torchNet.state_dict(), tmp_path / "torch.safetensors")
    loadTorchStateDict(ours, tmp_path / "torch.safetensors")
    numpy.testing.assert_allclose(oursOutput(ours, x), torchOutput(torchNet, x), rtol=1e-5, atol=1e-5)

    for var in ours.getVarTable().values():
        var.data[...] = toDevice(rng.standard_normal(var.data.shape).astype(var.data.dtype) * 0.5)
    saveTorchStateDict(ours, tmp_path / "minidl.safetensors")
    torchNet.load_state_dict(safetensorsTorch.load_file(tmp_path / "minidl.safetensors"), strict=True)
    numpy.testing.assert_allclose(torchOutput(torchNet, x), oursOutput(ours, x), rtol=1e-5, atol=1e-5)


class SelfAttention(nn.MultiheadAttention):
    """PyTorch's attention as self-attention returning the output only."""

    def forward(self, x):
        return super().forward(x, x, x, need_weights=False)[0]


def test_attention_and_layernorm(tmp_path):
    torch.manual_seed(2)
    seed(2)
    torchNet = nn.Sequential(nn.LayerNorm(8), SelfAttention(8, 2), nn.Linear(8, 3))
    ours = Sequential(LayerNorm(8), MultiHeadAttention(8, 2, causal=False), Linear(8, 3))
    randomiseTorch(torchNet)
    x = rng.standard_normal((5, 2, 8)).astype(numpy.float32)
    state = {name: tensor.numpy() for name, tensor in torchNet.state_dict().items()}
    assert "1.out_proj.weight" in state
    loadTorchStateDict(ours, state)
    numpy.testing.assert_allclose(oursOutput(ours, x), torchOutput(torchNet, x), rtol=1e-5, atol=1e-5)
    safetensorsTorch.save_file(torchNet.state_dict(), tmp_path / "torch.safetensors")
    loadTorchStateDict(ours, tmp_path / "torch.safetensors")
    numpy.testing.assert_allclose(oursOutput(ours, x), torchOutput(torchNet, x), rtol=1e-5, atol=1e-5)

    for var in ours.getVarTable().values():
        var.data[...] = toDevice(rng.standard_normal(var.data.shape).astype(var.data.dtype) * 0.5)
    saveTorchStateDict(ours, tmp_path / "minidl.safetensors")
    torchNet.load_state_dict(safetensorsTorch.load_file(tmp_path / "minidl.safetensors"), strict=True)
    numpy.testing.assert_allclose(torchOutput(torchNet, x), oursOutput(ours, x), rtol=1e-5, atol=1e-5)
