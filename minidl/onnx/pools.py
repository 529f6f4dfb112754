"""Exporters of the pools: MaxPool2D (padding never wins) and AvgPool2D (padding counted as zeros).

Ceil mode: opset 17's MaxPool and AveragePool count ceil((length + 2 pad - size) / stride) + 1 windows, while
minidl (as PyTorch and ONNX Runtime) drops a last window that would start in the trailing pad, and then counts
floor mode's windows. Where the sample's sides show that, the file says floor mode (the same windows), so that
the shapes ONNX infers, and checks for a Linear after a Flatten, are the ones the file computes; on an axis where
ceil mode keeps a window that floor mode has not while another axis drops one, that window's taps past the
trailing pad are written as padding which an average leaves out of its count.
"""

import numpy

from minidl.nn.avgpool2d import AvgPool2D
from minidl.nn.maxpool2d import MaxPool2D
from minidl.onnx.registry import exporter


def _ceilWindows(sizes, strides, pads, lengths):
    """The window counts of ceil mode per axis: ONNX's (opset 17) and minidl's."""
    onnxCounts = [-(-(length + 2 * pad - size) // stride) + 1
                  for size, stride, pad, length in zip(sizes, strides, pads, lengths)]
    ours = [count - 1 if (count - 1) * stride >= length + pad else count
            for count, stride, pad, length in zip(onnxCounts, strides, pads, lengths)]
    return onnxCounts, ours


def poolNode(builder, opType, name, sizes, strides, pads, lengths, ceilMode):
    """MaxPool or AveragePool (padded taps counted) of windows ``sizes``, ``strides``, symmetric ``pads`` over an
    input whose windowed sides are ``lengths`` (the sample's); ceil mode as minidl's (see the module docstring)."""
    average = {"count_include_pad": 1} if opType == "AveragePool" else {}
    attributes = {"kernel_shape": list(sizes), "strides": list(strides), "pads": list(pads) * 2}
    if not ceilMode:
        return builder.op(opType, [name], ceil_mode=0, **attributes, **average)
    onnxCounts, ours = _ceilWindows(sizes, strides, pads, lengths)
    if onnxCounts == ours:
        return builder.op(opType, [name], ceil_mode=1, **attributes, **average)
    extra = [max(0, (count - 1) * stride + size - length - 2 * pad)
             for count, size, stride, pad, length in zip(ours, sizes, strides, pads, lengths)]
    if not any(extra):  # ceil mode's windows are floor mode's
        return builder.op(opType, [name], ceil_mode=0, **attributes, **average)
    if opType == "MaxPool":
        return builder.op(opType, [name], ceil_mode=0, **{**attributes, "pads": list(pads) + [
            pad + more for pad, more in zip(pads, extra)]})
    padded = builder.op("Pad", [name, builder.constant(numpy.array([0, 0, *pads] * 2, numpy.int64), "pads")])
    return builder.op(opType, [padded], ceil_mode=0, count_include_pad=0,
                      **{**attributes, "pads": [0] * len(pads) + extra})


def _window(module, cache):
    window = module.window
    return (list(window.size), list(window.stride), list(window.pad), cache["inData"].shape[2:],
            window.ceilMode)


@exporter(MaxPool2D)
def exportMaxPool2D(builder, module, inputs, cache):
    return poolNode(builder, "MaxPool", inputs[0], *_window(module, cache))


@exporter(AvgPool2D)
def exportAvgPool2D(builder, module, inputs, cache):
    """count_include_pad=1: minidl divides by the window's taps within the padded input."""
    return poolNode(builder, "AveragePool", inputs[0], *_window(module, cache))
