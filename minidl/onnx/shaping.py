"""Exporters of the modules without parameters: shaping (Flatten, Reshape, Concat, Split), merging (Add, Mul),
SoftMax, Cast, and the pass-throughs (Identity, Dropout, which is the identity in eval mode)."""

import numpy
from onnx import helper

from minidl.nn.add import Add
from minidl.nn.cast import Cast
from minidl.nn.concat import Concat
from minidl.nn.dropout import Dropout
from minidl.nn.flatten import Flatten
from minidl.nn.identity import Identity
from minidl.nn.mul import Mul
from minidl.nn.reshape import Reshape
from minidl.nn.softmax import SoftMax
from minidl.nn.split import Split
from minidl.onnx.registry import exporter


@exporter(Identity, Dropout)
def exportIdentity(builder, module, inputs, cache):
    return builder.op("Identity", [inputs[0]])


@exporter(Flatten)
def exportFlatten(builder, module, inputs, cache):
    return builder.op("Flatten", [inputs[0]], axis=1)


@exporter(Reshape)
def exportReshape(builder, module, inputs, cache):
    """The module's shape, except that a first side equal to the input's first side (the batch) becomes 0,
    ONNX's "copy this side from the input", so that the batch stays dynamic."""
    shape = list(module.shape)
    if shape[0] == cache["inData"].shape[0]:
        shape[0] = 0
    return builder.op("Reshape", [inputs[0], builder.constant(_int64(shape), "shape")])


@exporter(Concat)
def exportConcat(builder, module, inputs, cache):
    return builder.op("Concat", inputs, axis=module.axis)


@exporter(Split)
def exportSplit(builder, module, inputs, cache):
    sections = builder.constant(_int64(module.sections), "sections")
    return builder.op("Split", [inputs[0], sections], outputs=len(module.sections), axis=module.axis)


@exporter(Add)
def exportAdd(builder, module, inputs, cache):
    return builder.op("Sum", inputs)


@exporter(Mul)
def exportMul(builder, module, inputs, cache):
    out = inputs[0]
    for name in inputs[1:]:
        out = builder.op("Mul", [out, name])
    return out


@exporter(SoftMax)
def exportSoftMax(builder, module, inputs, cache):
    return builder.op("Softmax", [inputs[0]], axis=1)


def _int64(values):
    return numpy.array(values, dtype=numpy.int64)


@exporter(Cast)
def exportCast(builder, module, inputs, cache):
    return builder.op("Cast", [inputs[0]], to=helper.np_dtype_to_tensor_dtype(module.dtype))
