"""Exporters of PRelu, the local normalisations (CrossMapLRN as LRN; MapLRN, LCN and SubtractMean from
AveragePool: a window sum is N² times the padded average) and the layers that are the identity in eval mode
(Penalty, Dropout2D, NoiseInjector)."""

import numpy

from minidl.backend import toHost
from minidl.nn.crossmaplrn import CrossMapLRN
from minidl.nn.dropout2d import Dropout2D
from minidl.nn.lcn import LCN
from minidl.nn.maplrn import MapLRN
from minidl.nn.noiseinjector import NoiseInjector
from minidl.nn.penalty import Penalty
from minidl.nn.prelu import PRelu
from minidl.nn.subtractmean import SubtractMean, windowCounts
from minidl.onnx.registry import exporter


@exporter(Penalty, Dropout2D, NoiseInjector)
def exportEvalIdentity(builder, module, inputs, cache):
    return builder.op("Identity", [inputs[0]])


@exporter(PRelu)
def exportPRelu(builder, module, inputs, cache):
    """PRelu with the slopes broadcast per map: (maps, 1, ...) against (N, maps, ...), or (1,) when shared."""
    ndim = cache["inData"].ndim
    shape = (1,) if module.sharedMaps else (module.maps,) + (1,) * (ndim - 2)
    return builder.op("PRelu", [inputs[0], builder.constant(module.slopes.reshape(shape), "slopes")])


@exporter(CrossMapLRN)
def exportCrossMapLRN(builder, module, inputs, cache):
    """LRN for odd N (ONNX's window is minidl's; ONNX Runtime takes 4-D data, so other ranks go through a
    (N, C, rest, 1) view); for even N, which ONNX Runtime's LRN refuses, d = K + alpha AveragePool(x²) over an
    (N, 1) window of the maps in a (N, 1, C, rest) view, y = x / d^beta."""
    data = cache["inData"]
    shape = builder.op("Shape", [inputs[0]])
    if module.N % 2 == 1:
        attributes = dict(size=module.N, alpha=float(module.alpha), beta=float(module.beta), bias=float(module.K))
        if data.ndim == 4:
            return builder.op("LRN", [inputs[0]], **attributes)
        view = builder.op("Reshape", [inputs[0], builder.constant(numpy.array([0, 0, -1, 1], numpy.int64), "view")])
        return builder.op("Reshape", [builder.op("LRN", [view], **attributes), shape])
    dtype = data.dtype
    squares = builder.op("Mul", [inputs[0], inputs[0]])
    view = builder.op("Reshape", [squares, builder.constant(numpy.array([0, 1, data.shape[1], -1], numpy.int64),
                                                            "maps_view")])
    average = builder.op("AveragePool", [view], kernel_shape=[module.N, 1], strides=[1, 1],
                         pads=[module.before, 0, module.after, 0], count_include_pad=1)
    norms = builder.op("Add", [builder.scalar(module.K, dtype, "K"),
                               builder.op("Mul", [builder.scalar(module.alpha, dtype, "alpha"),
                                                  builder.op("Reshape", [average, shape])])])
    return _powerNorm(builder, inputs[0], norms, module.beta, dtype)


def _windowAverage(builder, name, size, before, after, includePad=True):
    return builder.op("AveragePool", [name], kernel_shape=[size, size], pads=[before, before, after, after],
                      strides=[1, 1], count_include_pad=int(includePad))


def _powerNorm(builder, x, norms, beta, dtype):
    """x / norms^beta."""
    return builder.op("Div", [x, builder.op("Pow", [norms, builder.scalar(beta, dtype, "beta")])])


@exporter(MapLRN)
def exportMapLRN(builder, module, inputs, cache):
    """d = K + alpha AveragePool(x², N x N, padded, count_include_pad), y = x / d^beta."""
    dtype = cache["inData"].dtype
    squares = builder.op("Mul", [inputs[0], inputs[0]])
    average = _windowAverage(builder, squares, module.N, module.before, module.after)
    norms = builder.op("Add", [builder.scalar(module.K, dtype, "K"),
                               builder.op("Mul", [builder.scalar(module.alpha, dtype, "alpha"), average])])
    return _powerNorm(builder, inputs[0], norms, module.beta, dtype)


@exporter(SubtractMean)
def exportSubtractMean(builder, module, inputs, cache):
    radius = module.size // 2
    return builder.op("Sub", [inputs[0], _windowAverage(builder, inputs[0], module.size, radius, radius,
                                                        module.includePad)])


@exporter(LCN)
def exportLCN(builder, module, inputs, cache):
    """S1, S2 = N² AveragePool(x), N² AveragePool(x²) (padded); m the local mean; n the in-map window counts
    (a constant of the sample's H x W); D = max(S2 - 2 m S1 + n m², 0); y = x / (K + alpha / N² D)^beta."""
    data = cache["inData"]
    dtype, radius, area = data.dtype, module.N // 2, module.N * module.N
    areaName = builder.scalar(area, dtype, "area")
    sums = builder.op("Mul", [_windowAverage(builder, inputs[0], module.N, radius, radius), areaName])
    squares = builder.op("Mul", [_windowAverage(builder, builder.op("Mul", [inputs[0], inputs[0]]), module.N,
                                                radius, radius), areaName])
    means = _windowAverage(builder, inputs[0], module.N, radius, radius, module.includePad)
    counts = builder.constant(toHost(windowCounts(data.shape[2], data.shape[3], radius, numpy.float64)).astype(dtype),
                              "counts")
    twice = builder.op("Mul", [builder.scalar(2, dtype, "two"), builder.op("Mul", [means, sums])])
    spread = builder.op("Add", [builder.op("Sub", [squares, twice]),
                                builder.op("Mul", [counts, builder.op("Mul", [means, means])])])
    spread = builder.op("Max", [spread, builder.scalar(0, dtype, "zero")])
    norms = builder.op("Add", [builder.scalar(module.K, dtype, "K"),
                               builder.op("Mul", [builder.scalar(module.alpha / area, dtype, "alpha"), spread])])
    return _powerNorm(builder, inputs[0], norms, module.beta, dtype)
