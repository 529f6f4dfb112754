"""The pieces of the PyTorch round-trip tests: a network's outputs in both frameworks, and the two directions
of a round trip through safetensors files, each asserting that the other framework gives the same outputs."""

import numpy

from minidl.backend import toDevice, toHost
from minidl.interop import loadTorchStateDict, saveTorchStateDict
from tests.optional import importSafetensorsTorch, importTorch

torch = importTorch()
safetensorsTorch = importSafetensorsTorch()


def torchOutput(torchNet, x):
    with torch.no_grad():
        return torchNet.eval()(torch.from_numpy(x)).numpy()


def oursOutput(net, x):
    return toHost(net.evalMode()(toDevice(x)))


def randomiseTorch(torchNet):
    """Every PyTorch parameter drawn from N(0, 0.5²) (torch's generator)."""
    with torch.no_grad():
        for parameter in torchNet.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.5)


def randomiseOurs(net, rng):
    """Every minidl parameter drawn from N(0, 0.5²) by ``rng``."""
    for var in net.getVarTable().values():
        var.data[...] = toDevice(rng.standard_normal(var.data.shape).astype(var.data.dtype) * 0.5)


def assertTorchWeightsIn(torchNet, ours, x, folder, atol=1e-5):
    """PyTorch's state dict, saved as a safetensors file and loaded into minidl, gives PyTorch's outputs."""
    safetensorsTorch.save_file(torchNet.state_dict(), folder / "torch.safetensors")
    loadTorchStateDict(ours, folder / "torch.safetensors")
    numpy.testing.assert_allclose(oursOutput(ours, x), torchOutput(torchNet, x), rtol=1e-5, atol=atol)


def assertOurWeightsOut(torchNet, ours, x, folder, atol=1e-5):
    """minidl's parameters, saved for PyTorch and loaded strictly into it, give minidl's outputs."""
    saveTorchStateDict(ours, folder / "minidl.safetensors")
    torchNet.load_state_dict(safetensorsTorch.load_file(folder / "minidl.safetensors"), strict=True)
    numpy.testing.assert_allclose(torchOutput(torchNet, x), oursOutput(ours, x), rtol=1e-5, atol=atol)
