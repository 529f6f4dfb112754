"""Exporter of Activation: one ONNX operator per activation function (gelu's tanh form from primitives,
since the Gelu operator arrives only at opset 20)."""

from minidl.errors import ExportError
from minidl.nn.activation import Activation
from minidl.nn.activationfunctions import GELU_A, GELU_C
from minidl.onnx.registry import exporter


def _gelu(builder, x, dtype):
    """y = x/2 (1 + tanh(c (x + a x³)))."""
    cube = builder.op("Mul", [builder.op("Mul", [x, x]), x])
    inner = builder.op("Add", [x, builder.op("Mul", [cube, builder.scalar(GELU_A, dtype)])])
    t = builder.op("Tanh", [builder.op("Mul", [inner, builder.scalar(GELU_C, dtype)])])
    half = builder.op("Mul", [x, builder.scalar(0.5, dtype)])
    return builder.op("Mul", [half, builder.op("Add", [t, builder.scalar(1.0, dtype)])])


FUNCTIONS = {
    "relu": lambda builder, x, args, dtype: builder.op("Relu", [x]),
    "leakyRelu": lambda builder, x, args, dtype: builder.op("LeakyRelu", [x], alpha=float(args[0])),
    "sigmoid": lambda builder, x, args, dtype: builder.op("Sigmoid", [x]),
    "tanh": lambda builder, x, args, dtype: builder.op("Tanh", [x]),
    "elu": lambda builder, x, args, dtype: builder.op("Elu", [x], alpha=float(args[0])),
    "softPlus": lambda builder, x, args, dtype: builder.op("Softplus", [x]),
    "gelu": lambda builder, x, args, dtype: _gelu(builder, x, dtype),
}


@exporter(Activation)
def exportActivation(builder, module, inputs, cache):
    function = FUNCTIONS.get(module.activation.name)
    if function is None:
        raise ExportError(f"{module!r}: no ONNX exporter for the activation {module.activation.name!r}; "
                          f"exportable: {sorted(FUNCTIONS)}")
    return function(builder, inputs[0], module.args, cache["inData"].dtype)
