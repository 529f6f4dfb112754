"""Exporter of SpatialTf: the affine grid from primitives (opset 17 has no AffineGrid, which arrives at opset
20): MatMul of the constant base grid (P, 3) with thetaᵀ (N, 3, 2), reshaped to (N, Ho, Wo, 2), then
GridSample (opset 16: bilinear, zeros padding, align_corners as the module's)."""

import numpy

from minidl.backend import toHost
from minidl.nn.spatialtf import SpatialTf, baseGrid
from minidl.onnx.registry import exporter


@exporter(SpatialTf)
def exportSpatialTf(builder, module, inputs, cache):
    x, _ = cache["inData"]
    height, width = module.outShape(x)
    base = builder.constant(numpy.ascontiguousarray(toHost(baseGrid(height, width, module.alignCorners, x.dtype))),
                            "base_grid")
    transposed = builder.op("Transpose", [inputs[1]], perm=[0, 2, 1])
    grid = builder.op("MatMul", [base, transposed])
    grid = builder.op("Reshape", [grid, builder.constant(numpy.array([-1, height, width, 2], numpy.int64),
                                                         "grid_shape")])
    return builder.op("GridSample", [inputs[0], grid], align_corners=int(module.alignCorners), mode="bilinear",
                      padding_mode="zeros")
