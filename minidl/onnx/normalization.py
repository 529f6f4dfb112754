"""Exporters of the per-sample normalisations: GroupNorm (from primitives: ReduceMean over each group) and
InstanceNorm2D (InstanceNormalization)."""

import numpy

from minidl.nn.groupnorm import GroupNorm
from minidl.nn.instancenorm2d import InstanceNorm2D
from minidl.onnx.registry import exporter


@exporter(GroupNorm)
def exportGroupNorm(builder, module, inputs, cache):
    """x as (N, G, rest); x̂ = (x - mean) / sqrt(mean((x - mean)²) + epsilon) per (n, g); back to x's shape
    (a Reshape to x's own Shape, so the batch stays free); then scale and bias per map."""
    data = cache["inData"]
    dtype = data.dtype
    grouped = builder.op("Reshape", [inputs[0], builder.constant(numpy.array([0, module.groups, -1], numpy.int64),
                                                                 "groups")])
    centred = builder.op("Sub", [grouped, builder.op("ReduceMean", [grouped], axes=[2], keepdims=1)])
    var = builder.op("ReduceMean", [builder.op("Mul", [centred, centred])], axes=[2], keepdims=1)
    std = builder.op("Sqrt", [builder.op("Add", [var, builder.scalar(module.epsilon, dtype, "epsilon")])])
    xhat = builder.op("Reshape", [builder.op("Div", [centred, std]), builder.op("Shape", [inputs[0]])])
    perMap = (module.maps,) + (1,) * (data.ndim - 2)
    scale = builder.constant(module.scale.reshape(perMap), "scale")
    bias = builder.constant(module.bias.reshape(perMap), "bias")
    return builder.op("Add", [builder.op("Mul", [xhat, scale]), bias])


@exporter(InstanceNorm2D)
def exportInstanceNorm2D(builder, module, inputs, cache):
    names = [inputs[0], builder.constant(module.scale, "scale"), builder.constant(module.bias, "bias")]
    return builder.op("InstanceNormalization", names, epsilon=float(module.epsilon))
