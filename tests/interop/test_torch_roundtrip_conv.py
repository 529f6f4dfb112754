"""The convolution family in both frameworks: Conv1D, GroupNorm, Deconv2D (ConvTranspose2d), InstanceNorm2D.
PyTorch's weights in give PyTorch's outputs; minidl's weights out give minidl's."""

import numpy
import pytest

from minidl.backend import seed
from minidl.nn import Conv1D, Deconv2D, GroupNorm, InstanceNorm2D, Sequential
from tests.interop.torchpairs import assertOurWeightsOut, assertTorchWeightsIn, randomiseOurs, randomiseTorch, torch

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


@pytest.mark.parametrize("pair", [convPair, deconvPair])
def test_pytorch_weights_in_and_minidl_weights_out(tmp_path, pair):
    torch.manual_seed(1)
    seed(1)
    torchNet, ours, x = pair()
    randomiseTorch(torchNet)
    assertTorchWeightsIn(torchNet, ours, x, tmp_path)
    randomiseOurs(ours, rng)
    assertOurWeightsOut(torchNet, ours, x, tmp_path)
