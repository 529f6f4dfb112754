"""How each minidl layer's arrays appear in a PyTorch state dict: names and layout conversions.

``LAYOUTS[type](module)`` lists, in PyTorch's order, ``(torchName, array, conversion)`` for the module's
parameters and buffers (``array`` is minidl's device array); ``conversion`` maps a host array from one layout
to the other and is its own inverse (a transpose, or nothing). ``IGNORED`` names the entries PyTorch keeps
that minidl has no use for (BatchNorm's ``num_batches_tracked``, used by PyTorch only with momentum=None).
"""

from minidl.nn.attention import MultiHeadAttention
from minidl.nn.batchnorm import BatchNorm
from minidl.nn.batchnorm1d import BatchNorm1D
from minidl.nn.batchnorm2d import BatchNorm2D
from minidl.nn.batchnorm3d import BatchNorm3D
from minidl.nn.conv1d import Conv1D
from minidl.nn.conv2d import Conv2D
from minidl.nn.conv3d import Conv3D
from minidl.nn.deconv1d import Deconv1D
from minidl.nn.deconv2d import Deconv2D
from minidl.nn.deconv3d import Deconv3D
from minidl.nn.embedder import Embedder
from minidl.nn.groupnorm import GroupNorm
from minidl.nn.instancenorm2d import InstanceNorm2D
from minidl.nn.layernorm import LayerNorm
from minidl.nn.linear import Linear
from minidl.nn.positional import PositionalEmbedding
from minidl.nn.rnn import RNN


def same(array):
    return array


def transposed(array):
    """Linear's W is (in, out) in minidl and (out, in) in PyTorch."""
    return array.T


def _linear(module):
    entries = [("weight", module.W, transposed)]
    return entries + [("bias", module.b, same)] if module.useBias else entries


def _convolution(module):
    """Conv1D/2D/3D, Deconv1D/2D/3D: W has PyTorch's shape in minidl ((out, in / groups, k...), ConvTranspose's
    (in, out / groups, k...))."""
    entries = [("weight", module.W, same)]
    return entries + [("bias", module.b, same)] if module.useBias else entries


def _batchnorm(module):
    return [("weight", module.scale, same), ("bias", module.bias, same),
            ("running_mean", module.runningMean, same), ("running_var", module.runningVar, same)]


def _embedder(module):
    return [("weight", module.W, same)]  # (vocabulary, size) in both


def _affine(module):
    """GroupNorm, InstanceNorm2D (affine=True), LayerNorm: PyTorch's weight and bias are scale and bias."""
    return [("weight", module.scale, same), ("bias", module.bias, same)]


def _attention(module):
    """nn.MultiheadAttention: the fused input projection, then its out_proj submodule (PyTorch's layout)."""
    return [("in_proj_weight", module.in_proj_weight, same), ("in_proj_bias", module.in_proj_bias, same),
            ("out_proj.weight", module.out_proj_weight, same), ("out_proj.bias", module.out_proj_bias, same)]


def _positions(module):
    """Learned positions as an nn.Embedding(maxLength, size) (GPT-2's wpe); sinusoids hold no array."""
    return [("weight", module.W, same)]


def _rnn(module):
    """PyTorch's names, shapes and gate order (lstm i f g o, gru r z n) are minidl's: weight_ih_l0,
    weight_hh_l0, bias_ih_l0, bias_hh_l0, then ``_reverse`` ones for the backward direction, layer by layer."""
    return [(name, var.data, same) for name, var in module.vars.items()]


LAYOUTS = {
    Linear: _linear,
    Conv1D: _convolution,
    Conv2D: _convolution,
    Conv3D: _convolution,
    Deconv1D: _convolution,
    Deconv2D: _convolution,
    Deconv3D: _convolution,
    BatchNorm: _batchnorm,
    BatchNorm1D: _batchnorm,
    BatchNorm2D: _batchnorm,
    BatchNorm3D: _batchnorm,
    Embedder: _embedder,
    GroupNorm: _affine,
    InstanceNorm2D: _affine,
    LayerNorm: _affine,
    MultiHeadAttention: _attention,
    PositionalEmbedding: _positions,
    RNN: _rnn,
}

IGNORED = {kind: ("num_batches_tracked",) for kind in (BatchNorm, BatchNorm1D, BatchNorm2D, BatchNorm3D)}
