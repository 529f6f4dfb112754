"""The sequence layers in both frameworks: every RNN mode (PyTorch's LSTM, GRU and RNN, whose weights minidl
keeps in PyTorch's layout and gate order), LayerNorm and MultiHeadAttention. PyTorch's weights in give PyTorch's
outputs; minidl's weights out give minidl's."""

import numpy
import pytest

from minidl.backend import seed
from minidl.interop import loadTorchStateDict
from minidl.nn import RNN, LayerNorm, Linear, MultiHeadAttention, Sequential
from tests.interop.torchpairs import (
    assertOurWeightsOut,
    assertTorchWeightsIn,
    oursOutput,
    randomiseOurs,
    randomiseTorch,
    torch,
    torchOutput,
)

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


@pytest.mark.parametrize("mode", sorted(TORCH_RNN))
def test_rnn_weights_in_and_out(tmp_path, mode):
    torch.manual_seed(1)
    seed(1)
    torchNet, ours, x = rnnPair(mode)
    randomiseTorch(torchNet)
    assertTorchWeightsIn(torchNet, ours, x, tmp_path)
    randomiseOurs(ours, rng)
    assertOurWeightsOut(torchNet, ours, x, tmp_path)


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
    assertTorchWeightsIn(torchNet, ours, x, tmp_path)
    randomiseOurs(ours, rng)
    assertOurWeightsOut(torchNet, ours, x, tmp_path)
