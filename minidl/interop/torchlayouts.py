"""How each minidl layer's arrays appear in a PyTorch state dict: names and layout conversions.

``LAYOUTS[type](module)`` lists, in PyTorch's order, ``(torchName, array, conversion)`` for the module's
parameters and buffers (``array`` is minidl's device array); ``conversion`` maps a host array from one layout
to the other and is its own inverse (a transpose, or nothing). ``IGNORED`` names the entries PyTorch keeps
that minidl has no use for (BatchNorm's ``num_batches_tracked``, used by PyTorch only with momentum=None).
"""

from minidl.nn.batchnorm import BatchNorm
from minidl.nn.batchnorm2d import BatchNorm2D
from minidl.nn.conv1d import Conv1D
from minidl.nn.conv2d import Conv2D
from minidl.nn.deconv2d import Deconv2D
from minidl.nn.embedder import Embedder
from minidl.nn.groupnorm import GroupNorm
from minidl.nn.instancenorm2d import InstanceNorm2D
from minidl.nn.linear import Linear


def same(array):
    return array


def transposed(array):
    """Linear's W is (in, out) in minidl and (out, in) in PyTorch."""
    return array.T


def _linear(module):
    entries = [("weight", module.W, transposed)]
    return entries + [("bias", module.b, same)] if module.useBias else entries


def _convolution(module):
    """Conv1D, Conv2D, Deconv2D: W has PyTorch's shape in minidl ((out, in / groups, k...), ConvTranspose's
    (in, out / groups, kh, kw))."""
    entries = [("weight", module.W, same)]
    return entries + [("bias", module.b, same)] if module.useBias else entries


def _batchnorm(module):
    return [("weight", module.scale, same), ("bias", module.bias, same),
            ("running_mean", module.runningMean, same), ("running_var", module.runningVar, same)]


def _embedder(module):
    return [("weight", module.W, same)]  # (vocabulary, size) in both


def _affine(module):
    """GroupNorm, InstanceNorm2D (PyTorch's affine=True): PyTorch's weight and bias are scale and bias."""
    return [("weight", module.scale, same), ("bias", module.bias, same)]


LAYOUTS = {
    Linear: _linear,
    Conv1D: _convolution,
    Conv2D: _convolution,
    Deconv2D: _convolution,
    BatchNorm: _batchnorm,
    BatchNorm2D: _batchnorm,
    Embedder: _embedder,
    GroupNorm: _affine,
    InstanceNorm2D: _affine,
}

IGNORED = {BatchNorm: ("num_batches_tracked",), BatchNorm2D: ("num_batches_tracked",)}
