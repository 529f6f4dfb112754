"""Exporters of the pools: MaxPool2D (padding never wins) and AvgPool2D (padding counted as zeros)."""

from minidl.nn.avgpool2d import AvgPool2D
from minidl.nn.maxpool2d import MaxPool2D
from minidl.onnx.registry import exporter


def _window(module):
    window = module.window
    return {"kernel_shape": list(window.size), "strides": list(window.stride), "pads": list(window.pad) * 2,
            "ceil_mode": int(window.ceilMode)}


@exporter(MaxPool2D)
def exportMaxPool2D(builder, module, inputs, cache):
    return builder.op("MaxPool", [inputs[0]], **_window(module))


@exporter(AvgPool2D)
def exportAvgPool2D(builder, module, inputs, cache):
    """count_include_pad=1: minidl always divides by the window's size, padded taps included."""
    return builder.op("AveragePool", [inputs[0]], count_include_pad=1, **_window(module))
