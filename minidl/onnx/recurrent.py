"""Exporter of RNN: one ONNX LSTM, GRU or RNN node per layer (both directions in one node).

minidl keeps PyTorch's weights; ONNX orders the gates otherwise (LSTM: PyTorch i f g o, ONNX i o f c; GRU:
PyTorch r z n, ONNX z r h), so each weight's gate blocks are reordered. PyTorch's GRU applies the reset gate
after the recurrent product, ONNX's ``linear_before_reset=1``. A layer's Y (time, directions, batch, hsize) is
transposed to (time, batch, directions, hsize) and joined to (time, batch, directions·hsize), the next layer's
input; without ``getSequences`` the output is the top layer's Y_h as (batch, directions·hsize).
"""

import numpy

from minidl.backend import toHost
from minidl.nn.rnn import RNN
from minidl.onnx.registry import exporter

OPERATORS = {"lstm": "LSTM", "gru": "GRU", "relu": "RNN", "tanh": "RNN"}
GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "relu": (0,), "tanh": (0,)}


def _reordered(module, kind, layer, direction):
    """The weight or bias in ONNX's gate order, on the host."""
    array = toHost(module.vars[module.varName(kind, layer, direction)].data)
    blocks = numpy.split(array, module.gates, axis=0)
    return numpy.concatenate([blocks[gate] for gate in GATE_ORDER[module.mode]], axis=0)


def _layerWeights(builder, module, layer):
    """The W, R and B initializers of one layer: (directions, G hsize, in), (directions, G hsize, hsize),
    (directions, 2 G hsize)."""
    directions = range(module.dirs)
    weights = numpy.stack([_reordered(module, "weight_ih", layer, d) for d in directions])
    recurrent = numpy.stack([_reordered(module, "weight_hh", layer, d) for d in directions])
    biases = numpy.stack([numpy.concatenate([_reordered(module, "bias_ih", layer, d),
                                             _reordered(module, "bias_hh", layer, d)]) for d in directions])
    return [builder.constant(array, hint) for array, hint in ((weights, "W"), (recurrent, "R"), (biases, "B"))]


def _layerStates(builder, module, layer, states):
    """The slices [layer dirs, (layer + 1) dirs) of h0 (and c0) along axis 0."""
    if not states:
        return []
    bounds = [builder.constant(numpy.array([value], numpy.int64), hint)
              for value, hint in ((layer * module.dirs, "start"), ((layer + 1) * module.dirs, "end"))]
    axis = builder.constant(numpy.array([0], numpy.int64), "axis")
    return [builder.op("Slice", [state, *bounds, axis]) for state in states]


@exporter(RNN)
def exportRNN(builder, module, inputs, cache):
    sequence, states = inputs[0], inputs[1:]
    attributes = {"hidden_size": module.hsize, "direction": "bidirectional" if module.dirs == 2 else "forward"}
    if module.mode == "gru":
        attributes["linear_before_reset"] = 1
    if module.mode in ("relu", "tanh"):
        attributes["activations"] = ["Relu" if module.mode == "relu" else "Tanh"] * module.dirs
    joined = builder.constant(numpy.array([0, 0, -1], numpy.int64), "joined")
    layerIn, finalH = sequence, None
    for layer in range(module.layers):
        names = [layerIn, *_layerWeights(builder, module, layer)]
        if states:
            names += ["", *_layerStates(builder, module, layer, states)]
        outputs = builder.op(OPERATORS[module.mode], names, outputs=2, **attributes)
        sequenceOut, finalH = outputs
        layerIn = builder.op("Reshape", [builder.op("Transpose", [sequenceOut], perm=[0, 2, 1, 3]), joined])
    if module.getSequences:
        return layerIn
    flat = builder.constant(numpy.array([0, -1], numpy.int64), "flat")
    return builder.op("Reshape", [builder.op("Transpose", [finalH], perm=[1, 0, 2]), flat])
