"""The same networks built in PyTorch and in minidl: PyTorch's weights loaded into minidl give PyTorch's
outputs, and minidl's weights saved for PyTorch give minidl's outputs (eval mode, float32, relative 1e-5)."""

import numpy
import pytest

from minidl.backend import seed, toDevice, toHost
from minidl.interop import loadTorchStateDict, saveTorchStateDict
from minidl.nn import (
    Activation,
    BatchNorm2D,
    Conv2D,
    Dropout,
    Embedder,
    Flatten,
    Linear,
    MaxPool2D,
    Sequential,
    relu,
    tanh,
)
from tests.optional import importSafetensorsTorch, importTorch

torch = importTorch()
safetensorsTorch = importSafetensorsTorch()
nn = torch.nn


def cnnPair():
    torchNet = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, groups=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), nn.Tanh(), nn.Flatten(),
                             nn.Linear(24, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))
    ours = Sequential().extend([Conv2D(1, 4, 3, pad=1), BatchNorm2D(4), Activation(relu), MaxPool2D(2),
                                Conv2D(4, 6, 3, stride=2, pad=1, useBias=False), Activation(tanh), Flatten(),
                                Linear(24, 8), Activation(relu), Dropout(0.3), Linear(8, 3)])
    return torchNet, ours, numpy.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(numpy.float32)


def embedderPair():
    torchNet = nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 2))
    ours = Sequential().extend([Embedder(7, 4), Linear(4, 2)])
    return torchNet, ours, numpy.array([0, 6, 3, 3, 1])


def torchOutput(torchNet, x):
    with torch.no_grad():
        return torchNet.eval()(torch.from_numpy(x)).numpy()


def oursOutput(net, x):
    return toHost(net.evalMode()(toDevice(x)))


def shuffleBatchNormStatistics(torchNet):
    torchNet.train()
    with torch.no_grad():
        for _ in range(3):
            torchNet(torch.randn(6, 1, 8, 8))


@pytest.mark.parametrize("pair", [cnnPair, embedderPair])
def test_pytorch_weights_in(tmp_path, pair):
    torch.manual_seed(0)
    torchNet, ours, x = pair()
    if pair is cnnPair:
        shuffleBatchNormStatistics(torchNet)
    safetensorsTorch.save_file(torchNet.state_dict(), tmp_path / "torch.safetensors")
    loadTorchStateDict(ours, tmp_path / "torch.safetensors")
    numpy.testing.assert_allclose(oursOutput(ours, x), torchOutput(torchNet, x), rtol=1e-5, atol=1e-6)

    seed(5)
    _, fromDict, _ = pair()  # a dict of NumPy arrays in state_dict() order loads the same
    loadTorchStateDict(fromDict, {name: tensor.numpy() for name, tensor in torchNet.state_dict().items()})
    numpy.testing.assert_allclose(oursOutput(fromDict, x), torchOutput(torchNet, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pair", [cnnPair, embedderPair])
def test_minidl_weights_out(tmp_path, pair):
    seed(3)
    torchNet, ours, x = pair()
    for buffer in ours.getBufferTable().values():  # running statistics away from (0, 1)
        buffer[...] = toDevice(numpy.random.default_rng(1).uniform(0.5, 1.5, buffer.shape).astype(buffer.dtype))
    saveTorchStateDict(ours, tmp_path / "minidl.safetensors")
    torchNet.load_state_dict(safetensorsTorch.load_file(tmp_path / "minidl.safetensors"), strict=True)
    numpy.testing.assert_allclose(torchOutput(torchNet, x), oursOutput(ours, x), rtol=1e-5, atol=1e-6)
