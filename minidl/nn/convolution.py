"""What the convolutions and transposed convolutions of every rank share: their map counts and parameters, the
check of an input's maps."""

import numpy

from minidl.backend import toDevice, xp
from minidl.errors import ModuleError
from minidl.nn.linear import initWeights
from minidl.nn.module import checkArray, checkNotEmpty
from minidl.validation import checkSize
from minidl.variable import Variable


def setupConvolution(module, inmaps, outmaps, groups, useBias, initscheme, dtype, transposed=False):
    """Check a convolution's map counts and give it its parameters (``module.window`` set): W of PyTorch's shape,
    (outmaps, inmaps / G, *window) for a convolution and (inmaps, outmaps / G, *window) for a transposed one
    (``transposed``), drawn by ``initscheme`` for the fans of the convolution W computes; b of shape (outmaps,),
    zeros, when ``useBias``."""
    kind = type(module).__name__
    inmaps, outmaps = checkSize(inmaps, f"{kind} inmaps"), checkSize(outmaps, f"{kind} outmaps")
    groups = checkSize(groups, f"{kind} groups")
    if inmaps % groups or outmaps % groups:
        raise ModuleError(f"{kind} maps must be positive multiples of groups, got inmaps={inmaps}, "
                          f"outmaps={outmaps}, groups={groups}")
    module.inmaps, module.outmaps, module.groups, module.useBias = inmaps, outmaps, groups, useBias
    taps = int(numpy.prod(module.window.size))
    first, second = (inmaps, outmaps) if transposed else (outmaps, inmaps)
    weights = initWeights(initscheme, second // groups * taps, first // groups * taps,
                          (first, second // groups, *module.window.size))
    module.setVar("W", Variable(toDevice(weights, dtype=dtype), name="W"))
    if useBias:
        module.setVar("b", Variable(xp.zeros((outmaps,), dtype=dtype), name="b"))


def groupedWeights(weights, groups):
    """W (first, second / G, *window) as the per-group matrices of its products, (G, first / G, second / G taps):
    (G, O/G, C/G taps) for a convolution's W, (G, C/G, O/G taps) for a transposed one's."""
    return weights.reshape(groups, weights.shape[0] // groups, -1)


def checkMaps(module, data, axes):
    """Raise ModuleError unless ``data`` is (batch, module.inmaps, *axes) data of W's dtype; ``axes`` names the
    spatial axes ("depth", "height", "width")."""
    checkArray(data, f"{module!r}: input", ndim=2 + len(axes), dtype=module.W.dtype)
    checkNotEmpty(module, data)
    if data.shape[1] != module.inmaps:
        raise ModuleError(f"{module!r}: input must have {module.inmaps} maps, shape (batch, {module.inmaps}, "
                          f"{', '.join(axes)}), got {data.shape}")
