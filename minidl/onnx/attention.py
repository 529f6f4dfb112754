"""Exporters of the transformer's modules: MultiHeadAttention, PositionalEmbedding and TransformerBlock, on
(time, batch, embed) sequences, from primitives (opset 17 has no attention operator).

Attention: qkv = x Wᵀ + b as (time, batch, 3, heads, d), transposed to (3, batch, heads, time, d); scores
q kᵀ / sqrt(d) (batch, heads, time, time); the causal mask (Trilu of ones above the diagonal, of the
sequence's own length) and the padding mask (batch, 1, 1, time) put -inf on hidden keys; Softmax over the
keys; (P v) back to (time, batch, embed); the output projection. A query that sees no key at all gives NaN in
ONNX where minidl gives 0 (no softmax operator is defined for an empty row).
"""

import math

import numpy
from onnx import TensorProto, helper

from minidl.backend import toHost
from minidl.nn.attention import MultiHeadAttention
from minidl.nn.positional import PositionalEmbedding
from minidl.nn.transformer import TransformerBlock
from minidl.onnx.registry import exporter, exportModule


def _int64(builder, values, hint):
    return builder.constant(numpy.array(values, dtype=numpy.int64), hint)


def _projection(builder, x, weight, bias, hint):
    """x Wᵀ + b over the last axis, W in PyTorch's (out, in) layout."""
    transposed = builder.constant(numpy.ascontiguousarray(toHost(weight).T), hint)
    return builder.op("Add", [builder.op("MatMul", [x, transposed]), builder.constant(bias, f"{hint}_bias")])


def _masked(builder, scores, hidden, dtype):
    """scores where hidden is False, -inf where it is True (hidden broadcasts against scores)."""
    return builder.op("Where", [hidden, builder.scalar(-numpy.inf, dtype, "minus_inf"), scores])


@exporter(MultiHeadAttention)
def exportMultiHeadAttention(builder, module, inputs, cache):
    sequence = inputs[0]
    dtype = (cache["inData"][0] if len(inputs) > 1 else cache["inData"]).dtype
    qkv = _projection(builder, sequence, module.in_proj_weight, module.in_proj_bias, "in_proj")
    qkv = builder.op("Reshape", [qkv, _int64(builder, [0, 0, 3, module.heads, module.headSize], "qkv_shape")])
    qkv = builder.op("Transpose", [qkv], perm=[2, 1, 3, 0, 4])
    q, k, v = (builder.op("Gather", [qkv, _int64(builder, index, "part")], axis=0) for index in range(3))
    scores = builder.op("MatMul", [q, builder.op("Transpose", [k], perm=[0, 1, 3, 2])])
    scores = builder.op("Mul", [scores, builder.scalar(1 / math.sqrt(module.headSize), dtype, "scale")])
    if module.causal:
        square = builder.op("Slice", [builder.op("Shape", [scores]), _int64(builder, [2], "from"),
                                      _int64(builder, [4], "to")])
        ones = builder.op("ConstantOfShape", [square], value=helper.make_tensor("one", TensorProto.INT32, [1], [1]))
        later = builder.op("Trilu", [ones, _int64(builder, 1, "above")], upper=1)
        scores = _masked(builder, scores, builder.op("Cast", [later], to=TensorProto.BOOL), dtype)
    if len(inputs) > 1:
        padding = builder.op("Reshape", [inputs[1], _int64(builder, [0, 1, 1, -1], "padding_shape")])
        scores = _masked(builder, scores, builder.op("Cast", [padding], to=TensorProto.BOOL), dtype)
    probs = builder.op("Softmax", [scores], axis=-1)
    context = builder.op("Transpose", [builder.op("MatMul", [probs, v])], perm=[2, 0, 1, 3])
    context = builder.op("Reshape", [context, _int64(builder, [0, 0, -1], "joined")])
    return _projection(builder, context, module.out_proj_weight, module.out_proj_bias, "out_proj")


@exporter(PositionalEmbedding)
def exportPositionalEmbedding(builder, module, inputs, cache):
    """x + P[:time] as (time, 1, size): the rows of the table up to the sequence's own length."""
    steps = builder.op("Slice", [builder.op("Shape", [inputs[0]]), _int64(builder, [0], "from"),
                                 _int64(builder, [1], "to")])
    rows = builder.op("Slice", [builder.constant(module.positions(), "positions"), _int64(builder, [0], "start"),
                                steps, _int64(builder, [0], "axis")])
    return builder.op("Add", [inputs[0], builder.op("Unsqueeze", [rows, _int64(builder, [1], "batch_axis")])])


@exporter(TransformerBlock)
def exportTransformerBlock(builder, module, inputs, cache):
    """y = x + Dropout(Attention(LayerNorm₁(x))); out = y + Dropout(Linear₂(GELU(Linear₁(LayerNorm₂(y)))))."""
    blocks, caches = module.blocks, cache["caches"]

    def run(name, names):
        return exportModule(builder, blocks[name], names, caches[name])

    normed = run("norm1", inputs[:1])
    attended = run("drop1", [run("attention", [normed, *inputs[1:]])])
    middle = builder.op("Add", [inputs[0], attended])
    hidden = run("norm2", [middle])
    for name in ("fc1", "gelu", "fc2", "drop2"):
        hidden = run(name, [hidden])
    return builder.op("Add", [middle, hidden])
