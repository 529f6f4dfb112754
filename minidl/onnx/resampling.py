"""Exporters of the modules that change an image's size: Pad2D (Pad), Upsample2D (Resize), GlobalAvgPool2D."""

import numpy

from minidl.nn.globalavgpool2d import GlobalAvgPool2D
from minidl.nn.pad2d import Pad2D
from minidl.nn.upsample2d import Upsample2D
from minidl.onnx.registry import exporter

PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


@exporter(Pad2D)
def exportPad2D(builder, module, inputs, cache):
    """Pad with pads (begin of every axis, then end of every axis): (0, 0, top, left, 0, 0, bottom, right)."""
    pads = numpy.array([0, 0, module.top, module.left, 0, 0, module.bottom, module.right], dtype=numpy.int64)
    names = [inputs[0], builder.constant(pads, "pads")]
    if module.mode == "constant":
        names.append(builder.scalar(module.value, cache["inData"].dtype, "value"))
    return builder.op("Pad", names, mode=PAD_MODES[module.mode])


@exporter(Upsample2D)
def exportUpsample2D(builder, module, inputs, cache):
    """Resize by the scales (1, 1, sy, sx). nearest: source i // s ("asymmetric" coordinates, floor);
    bilinear: source (i + 1/2) / s - 1/2 clamped at the edges ("half_pixel", PyTorch's align_corners=False)."""
    scales = builder.constant(numpy.array([1, 1, *module.scale], dtype=numpy.float32), "scales")
    if module.mode == "nearest":
        return builder.op("Resize", [inputs[0], "", scales], mode="nearest",
                          coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    return builder.op("Resize", [inputs[0], "", scales], mode="linear", coordinate_transformation_mode="half_pixel")


@exporter(GlobalAvgPool2D)
def exportGlobalAvgPool2D(builder, module, inputs, cache):
    return builder.op("GlobalAveragePool", [inputs[0]])
