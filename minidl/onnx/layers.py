"""Exporters of the layers with parameters: Linear, Conv2D, BatchNorm, Embedder (eval mode)."""

from minidl.nn.batchnorm import BatchNorm
from minidl.nn.batchnorm2d import BatchNorm2D
from minidl.nn.conv2d import Conv2D
from minidl.nn.embedder import Embedder
from minidl.nn.linear import Linear
from minidl.onnx.registry import exporter


@exporter(Linear)
def exportLinear(builder, module, inputs, cache):
    """y = MatMul(x, W) + b: MatMul takes x of any rank against W (in, out), minidl's layout."""
    out = builder.op("MatMul", [inputs[0], builder.constant(module.W, "W")])
    return builder.op("Add", [out, builder.constant(module.b, "b")]) if module.useBias else out


@exporter(Conv2D)
def exportConv2D(builder, module, inputs, cache):
    """Conv with W (O, C/G, kh, kw) as minidl keeps it, symmetric pads, strides, dilations, groups."""
    window = module.window
    names = [inputs[0], builder.constant(module.W, "W")]
    if module.useBias:
        names.append(builder.constant(module.b, "b"))
    return builder.op("Conv", names, kernel_shape=list(window.size), strides=list(window.stride),
                      pads=list(window.pad) * 2, dilations=list(window.dilation), group=module.groups)


@exporter(BatchNorm, BatchNorm2D)
def exportBatchNorm(builder, module, inputs, cache):
    """BatchNormalization in inference mode: scale (x - running mean) / sqrt(running var + epsilon) + bias."""
    names = [inputs[0], builder.constant(module.scale, "scale"), builder.constant(module.bias, "bias"),
             builder.constant(module.runningMean, "mean"), builder.constant(module.runningVar, "var")]
    return builder.op("BatchNormalization", names, epsilon=float(module.epsilon))


@exporter(Embedder)
def exportEmbedder(builder, module, inputs, cache):
    """Gather of W's rows (axis 0) at the integer indices: output shape indices.shape + (size,)."""
    return builder.op("Gather", [builder.constant(module.W, "W"), inputs[0]], axis=0)
