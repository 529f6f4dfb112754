"""The convolution family in both frameworks: Conv1D, GroupNorm, Deconv2D (ConvTranspose2d), InstanceNorm2D.
PyTorch's weights in give PyTorch's outputs; minidl's weights out give minidl's."""

import numpy
import pytest

from minidl.backend import seed, toDevice, toHost
from minidl.interop import loadTorchStateDict, saveTorchStateDict
from minidl.nn import Conv1D, Deconv2D, GroupNorm, InstanceNorm2D, Sequential
from tests.optional import importSafetensorsTorch, importTorch

torch = importTorch()
safetensorsTorch = importSafetensorsTorch()
nn = torch.nn
rng = numpy.random.default_rng(4)


def convPair():
    torchNet = nn.Sequential(nn.Conv1d(2, 4, 3, stride=2, padding=1), nn.GroupNorm(2, 4), nn.Conv1d(4, 6, 1, groups=2))
    ours = Sequential(Conv1D(2, 4, 3, stride=2, pad=1), GroupNorm(2, 4), Conv1D(4, 6, 1, groups=2))
    return torchNet, ours, rng.standard_normal((3, 2, 9)).astype(numpy.float32)


def deconvPair():
    torchNet = nn.Sequential(nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
                             nn.InstanceNorm2d(6, affine=True))
    ours = Sequential(Deconv2D(4, 6, 3, stride=2, pad=1, outpad=1, groups=2), InstanceNorm2D(6))
    return torchNet, ours, rng.standard_normal((2, 4, 3, 3)).astype(numpy.float32)


def torchOutput(torchNet, x):
    with torch.no_grad():
        return torchNet.eval()(torch.from_numpy(x)).numpy()


def oursOutput(net, x):
    return toHost(net.evalMode()(toDevice(x)))


@pytest.mark.parametrize("pair", [convPair, deconvPair])
def test_pytorch_weights_in_and_minidl_weights_out(tmp_path, pair):
    torch.manual_seed(1)
    seed(1)
    torchNet, ours, x = pair()
    with torch.no_grad():
        for parameter in torchNet.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.5)
    safetensorsTorch.save_file(torchNet.state_dict(), tmp_path / "torch.safetensors")
    loadTorchStateDict(ours, tmp_path / "torch.safetensors")
    numpy.testing.assert_allclose(oursOutput(ours, x), torchOutput(torchNet, x), rtol=1e-5, atol=1e-5)

    for var in ours.getVarTable().values():
        var.data[...] = toDevice(rng.standard_normal(var.data.shape).astype(var.data.dtype) * 0.5)
    saveTorchStateDict(ours, tmp_path / "minidl.safetensors")
    torchNet.load_state_dict(safetensorsTorch.load_file(tmp_path / "minidl.safetensors"), strict=True)
    numpy.testing.assert_allclose(torchOutput(torchNet, x), oursOutput(ours, x), rtol=1e-5, atol=1e-5)
