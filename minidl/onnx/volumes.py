"""Exporters of the 1-D and 3-D family (Conv3D, Deconv1D, Deconv3D, MaxPool1D/3D, AvgPool1D/3D, BatchNorm1D/3D),
KMaxPool, and MaxUnpool2D's refusal.

minidl's 1-D layers keep their window as a 2-D one with a unit axis (``minidl.nn.line``); ONNX takes one axis.
"""

import numpy

from minidl.errors import ExportError
from minidl.nn.avgpool1d import AvgPool1D
from minidl.nn.avgpool3d import AvgPool3D
from minidl.nn.batchnorm1d import BatchNorm1D
from minidl.nn.batchnorm3d import BatchNorm3D
from minidl.nn.conv3d import Conv3D
from minidl.nn.deconv1d import Deconv1D
from minidl.nn.deconv3d import Deconv3D
from minidl.nn.kmaxpool import KMaxPool
from minidl.nn.maxpool1d import MaxPool1D
from minidl.nn.maxpool3d import MaxPool3D
from minidl.nn.maxunpool2d import MaxUnpool2D
from minidl.onnx.convolutions import _withBias
from minidl.onnx.layers import exportBatchNorm
from minidl.onnx.pools import poolNode
from minidl.onnx.registry import exporter

exporter(BatchNorm1D, BatchNorm3D)(exportBatchNorm)  # BatchNormalization takes (N, C, ...) of any rank


def _axes(module):
    """The window's (size, stride, pad, dilation) lists over the axes ONNX sees: the length's of minidl's 2-D
    pairs for a 1-D layer (``module.line``), all three for a 3-D one."""
    window = module.window
    values = (window.size, window.stride, window.pad, window.dilation)
    if isinstance(module, (Deconv1D, MaxPool1D, AvgPool1D)):
        return [[module.line.of(pair)] for pair in values]
    return [list(triple) for triple in values]


def _outpad(module):
    return [module.line.of(module.outpad)] if isinstance(module, Deconv1D) else list(module.outpad)


@exporter(Conv3D)
def exportConv3D(builder, module, inputs, cache):
    """Conv with W (O, C/G, kd, kh, kw) as minidl keeps it, symmetric pads."""
    size, stride, pad, dilation = _axes(module)
    return builder.op("Conv", _withBias(builder, module, inputs), kernel_shape=size, strides=stride, pads=pad * 2,
                      dilations=dilation, group=module.groups)


@exporter(Deconv1D, Deconv3D)
def exportDeconv(builder, module, inputs, cache):
    """ConvTranspose with W (C, O/G, k...), PyTorch's and ONNX's layout; outpad is output_padding."""
    size, stride, pad, dilation = _axes(module)
    return builder.op("ConvTranspose", _withBias(builder, module, inputs), kernel_shape=size, strides=stride,
                      pads=pad * 2, dilations=dilation, output_padding=_outpad(module),
                      group=module.groups)


def _pool(module, cache):
    size, stride, pad, _ = _axes(module)
    return size, stride, pad, cache["inData"].shape[2:], module.window.ceilMode


@exporter(MaxPool1D, MaxPool3D)
def exportMaxPool(builder, module, inputs, cache):
    return poolNode(builder, "MaxPool", inputs[0], *_pool(module, cache))


@exporter(AvgPool1D, AvgPool3D)
def exportAvgPool(builder, module, inputs, cache):
    """count_include_pad=1: minidl divides by the window's taps within the padded input."""
    return poolNode(builder, "AveragePool", inputs[0], *_pool(module, cache))


@exporter(KMaxPool)
def exportKMaxPool(builder, module, inputs, cache):
    """TopK gives the positions of the k largest (equal values: the lower position first, as minidl's), a second
    TopK (smallest first) sorts those positions ascending, GatherElements reads the values there."""
    k = builder.constant(numpy.array([module.k], numpy.int64), "k")
    _, positions = builder.op("TopK", [inputs[0], k], outputs=2, axis=module.axis, largest=1, sorted=1)
    ascending, _ = builder.op("TopK", [positions, k], outputs=2, axis=module.axis, largest=0, sorted=1)
    return builder.op("GatherElements", [inputs[0], ascending], axis=module.axis)


@exporter(MaxUnpool2D)
def exportMaxUnpool2D(builder, module, inputs, cache):
    """ONNX's MaxUnpool reads the indices its MaxPool computed from the same run's input; minidl's exporters pass
    one module's outputs to the next and no side outputs, and indices frozen from the sample would be wrong for
    any other input."""
    raise ExportError(f"{module!r}: MaxUnpool2D cannot be exported to ONNX: it needs the window maxima of its "
                      f"MaxPool2D on the same input, a second output of that pool which minidl's ONNX graphs do "
                      f"not carry between modules")
