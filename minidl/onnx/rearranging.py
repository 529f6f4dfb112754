"""Exporters of the modules taken from the framework minidl follows: Slice, Tile, Replicate, Sum, MulAddConst,
MoveAxis, DepthConcat, ToList and GroupLinear. Glue has none (it runs a user's Python functions): exporting it
is an ExportError naming it."""

import numpy

from minidl.backend import toHost
from minidl.nn.depthconcat import DepthConcat
from minidl.nn.grouplinear import GroupLinear
from minidl.nn.moveaxis import MoveAxis
from minidl.nn.muladdconst import MulAddConst
from minidl.nn.replicate import Replicate
from minidl.nn.slice import Slice
from minidl.nn.sum import Sum
from minidl.nn.tile import Tile
from minidl.nn.tolist import ToList
from minidl.onnx.registry import exporter

INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)


def _int64(values):
    return numpy.array(values, dtype=numpy.int64)


@exporter(Slice)
def exportSlice(builder, module, inputs, cache):
    """ONNX Slice over the leading axes; an open end becomes the int64 extreme on the side the step walks to."""
    starts, ends, steps = [], [], []
    for start, stop, step in module.slices:
        step = 1 if step is None else step
        starts.append(start if start is not None else (0 if step > 0 else INT64_MAX))
        ends.append(stop if stop is not None else (INT64_MAX if step > 0 else INT64_MIN))
        steps.append(step)
    axes = list(range(len(module.slices)))
    args = [builder.constant(_int64(values), hint) for values, hint in
            ((starts, "starts"), (ends, "ends"), (axes, "axes"), (steps, "steps"))]
    return builder.op("Slice", [inputs[0], *args])


@exporter(Tile)
def exportTile(builder, module, inputs, cache):
    repeats = [1] * cache["inData"].ndim
    repeats[module.axis] = module.times
    return builder.op("Tile", [inputs[0], builder.constant(_int64(repeats), "repeats")])


@exporter(Replicate)
def exportReplicate(builder, module, inputs, cache):
    return [builder.op("Identity", [inputs[0]]) for _ in range(module.times)]


@exporter(Sum)
def exportSum(builder, module, inputs, cache):
    data = inputs[0]
    if module.useWeights:
        ndim = cache["inData"][0].ndim
        weights = inputs[1]
        if module.axis + 1 < ndim:
            trailing = builder.constant(_int64(list(range(module.axis + 1, ndim))), "axes")
            weights = builder.op("Unsqueeze", [weights, trailing])
        data = builder.op("Mul", [data, weights])
    return builder.op("ReduceSum", [data, builder.constant(_int64([module.axis]), "axes")], keepdims=0)


@exporter(MulAddConst)
def exportMulAddConst(builder, module, inputs, cache):
    dtype = cache["inData"].dtype
    scaled = builder.op("Mul", [inputs[0], builder.scalar(module.a, dtype, "a")])
    return builder.op("Add", [scaled, builder.scalar(module.b, dtype, "b")])


@exporter(MoveAxis)
def exportMoveAxis(builder, module, inputs, cache):
    ndim = cache["inData"].ndim
    perm = list(range(ndim))
    perm.insert(module.dst % ndim, perm.pop(module.src % ndim))
    return builder.op("Transpose", [inputs[0]], perm=perm)


@exporter(DepthConcat)
def exportDepthConcat(builder, module, inputs, cache):
    shapes = [item.shape for item in cache["inData"]]
    height, width = max(shape[2] for shape in shapes), max(shape[3] for shape in shapes)
    padded = []
    for name, (_, _, h, w) in zip(inputs, shapes):
        top, left = (height - h) // 2, (width - w) // 2
        pads = _int64([0, 0, top, left, 0, 0, height - h - top, width - w - left])
        padded.append(builder.op("Pad", [name, builder.constant(pads, "pads")]) if pads.any() else name)
    return builder.op("Concat", padded, axis=1)


@exporter(ToList)
def exportToList(builder, module, inputs, cache):
    """The input tensors' names, flattened depth-first, each through an Identity (an output of its own)."""

    def flatten(names):
        return [leaf for name in names for leaf in (flatten(name) if isinstance(name, list) else [name])]

    return [builder.op("Identity", [name]) for name in flatten(inputs)]


@exporter(GroupLinear)
def exportGroupLinear(builder, module, inputs, cache):
    """(groups, batch, insize) @ W (groups, insize, outsize) + b (groups, 1, outsize), MatMul broadcasting a
    single group of input or of weights, between Transposes for the batch-first layout."""
    data = inputs[0] if module.batchDim == 1 else builder.op("Transpose", [inputs[0]], perm=[1, 0, 2])
    out = builder.op("MatMul", [data, builder.constant(module.W, "W")])
    if module.useBias:
        out = builder.op("Add", [out, builder.constant(toHost(module.b)[:, None, :], "b")])
    return out if module.batchDim == 1 else builder.op("Transpose", [out], perm=[1, 0, 2])
