"""Exporters of the convolutions beyond Conv2D: Conv1D (a 1-D Conv) and Deconv2D (ConvTranspose)."""

from minidl.nn.conv1d import Conv1D
from minidl.nn.deconv2d import Deconv2D
from minidl.onnx.registry import exporter


def _withBias(builder, module, inputs):
    names = [inputs[0], builder.constant(module.W, "W")]
    return names + [builder.constant(module.b, "b")] if module.useBias else names


@exporter(Conv1D)
def exportConv1D(builder, module, inputs, cache):
    """Conv on (N, C, L) with W (O, C/G, k): minidl keeps the window as (1, k) rows and columns."""
    window = module.window
    return builder.op("Conv", _withBias(builder, module, inputs), kernel_shape=[window.size[1]],
                      strides=[window.stride[1]], pads=[window.pad[1]] * 2, dilations=[window.dilation[1]],
                      group=module.groups)


@exporter(Deconv2D)
def exportDeconv2D(builder, module, inputs, cache):
    """ConvTranspose with W (C, O/G, kh, kw), PyTorch's and ONNX's layout; outpad is output_padding."""
    window = module.window
    return builder.op("ConvTranspose", _withBias(builder, module, inputs), kernel_shape=list(window.size),
                      strides=list(window.stride), pads=list(window.pad) * 2, dilations=list(window.dilation),
                      output_padding=list(module.outpad), group=module.groups)
