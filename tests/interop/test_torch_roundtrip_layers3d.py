"""The 1-D and 3-D family in both frameworks: Conv3D, BatchNorm3D, Deconv3D (ConvTranspose3d), Deconv1D
(ConvTranspose1d), BatchNorm1D, with the pools between them. PyTorch's state dict in gives PyTorch's outputs;
minidl's out gives minidl's."""

import numpy
import pytest

from minidl.backend import seed, toDevice, toHost
from minidl.interop import loadTorchStateDict, saveTorchStateDict
from minidl.nn import AvgPool1D, BatchNorm1D, BatchNorm3D, Conv3D, Deconv1D, Deconv3D, MaxPool3D, Sequential
from tests.optional import importSafetensorsTorch, importTorch

torch = importTorch()
safetensorsTorch = importSafetensorsTorch()
nn = torch.nn
rng = numpy.random.default_rng(4)


def volumePair():
    torchNet = nn.Sequential(nn.Conv3d(2, 4, 3, stride=(1, 2, 1), padding=1, groups=2), nn.BatchNorm3d(4),
                             nn.MaxPool3d(2, 1), nn.ConvTranspose3d(4, 6, 2, stride=2, output_padding=1))
    ours = Sequential(Conv3D(2, 4, 3, stride=(1, 2, 1), pad=1, groups=2), BatchNorm3D(4), MaxPool3D(2, 1),
                      Deconv3D(4, 6, 2, stride=2, outpad=1))
    return torchNet, ours, rng.standard_normal((2, 2, 4, 5, 4)).astype(numpy.float32)


def linePair():
    torchNet = nn.Sequential(nn.ConvTranspose1d(3, 4, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm1d(4),
                             nn.AvgPool1d(3, 2, 1))
    ours = Sequential(Deconv1D(3, 4, 3, stride=2, pad=1, outpad=1), BatchNorm1D(4), AvgPool1D(3, 2, 1))
    return torchNet, ours, rng.standard_normal((2, 3, 7)).astype(numpy.float32)


def torchOutput(torchNet, x):
    with torch.no_grad():
        return torchNet.eval()(torch.from_numpy(x)).numpy()


def oursOutput(net, x):
    return toHost(net.evalMode()(toDevice(x)))


@pytest.mark.parametrize("pair", [volumePair, linePair])
def test_pytorch_state_in_and_minidl_state_out(tmp_path, pair):
    torch.manual_seed(1)
    seed(1)
    torchNet, ours, x = pair()
    with torch.no_grad():
        for tensor in torchNet.state_dict().values():
            if tensor.is_floating_point():  # weights, biases and running statistics (variances kept positive)
                tensor.copy_(torch.rand_like(tensor) + 0.5)
    safetensorsTorch.save_file(torchNet.state_dict(), tmp_path / "torch.safetensors")
    loadTorchStateDict(ours, tmp_path / "torch.safetensors")
    numpy.testing.assert_allclose(oursOutput(ours, x), torchOutput(torchNet, x), rtol=1e-5, atol=1e-5)

    for array in ours.getArrayTable().values():
        array[...] = toDevice(rng.uniform(0.5, 1.5, array.shape).astype(array.dtype))
    saveTorchStateDict(ours, tmp_path / "minidl.safetensors")
    torchNet.load_state_dict(safetensorsTorch.load_file(tmp_path / "minidl.safetensors"), strict=True)
    numpy.testing.assert_allclose(torchOutput(torchNet, x), oursOutput(ours, x), rtol=1e-5, atol=1e-5)
