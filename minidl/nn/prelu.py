"""PRelu: a leaky ReLU whose negative slope is learned, one per map (or one shared by all maps). On (N, C, ...)
data, with a[c] the slope of map c (a[0] for every map when ``sharedMaps``),

    y = x                 where x > 0,        ∂x = grad            where x > 0,
    y = a[c] x            elsewhere,          ∂x = a[c] grad       elsewhere,
    ∂a[c] += Σ_{n, positions} grad · min(x, 0).

NaN propagates: y and ∂x are NaN where x is NaN. Slopes start at 0.25, as PyTorch's PReLU.
"""

import numpy

from minidl.backend import Elementwise, xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.validation import checkSize
from minidl.variable import Variable


def _mapSlopes(slopes, maps, spatial, size):
    """The slope of each element of a C-contiguous (N, maps, spatial) array, flattened."""
    return numpy.broadcast_to(slopes.reshape(1, -1, 1), (size // (maps * spatial), maps, spatial)).reshape(-1)


def _preluNumpy(x, slopes, maps, spatial, y):
    numpy.multiply(x, _mapSlopes(slopes, maps, spatial, x.size).reshape(x.shape), out=y)
    numpy.copyto(y, x, where=x > 0)


def _preluGradNumpy(grad, x, slopes, maps, spatial, ingrad):
    numpy.multiply(grad, _mapSlopes(slopes, maps, spatial, x.size).reshape(x.shape), out=ingrad)
    numpy.copyto(ingrad, grad, where=x > 0)
    numpy.copyto(ingrad, x, where=numpy.isnan(x))


# element i of (N, maps, spatial) data belongs to map (i / spatial) % maps
preluKer = Elementwise(
    "minidl_prelu", "T x, raw T slopes, int32 maps, int32 spatial", "T y",
    "y = x > (T)0 ? x : (T)(slopes[(i / spatial) % maps] * x)", _preluNumpy,
)

preluGradKer = Elementwise(
    "minidl_prelu_grad", "T grad, T x, raw T slopes, int32 maps, int32 spatial", "T ingrad",
    "ingrad = x > (T)0 ? grad : (isnan(x) ? x : (T)(slopes[(i / spatial) % maps] * grad))", _preluGradNumpy,
)


class PRelu(Module):
    """``PRelu(maps, sharedMaps=False, dtype=float32)`` on (N, maps, ...) data; Variable ``slopes`` of shape
    (maps,), or (1,) with ``sharedMaps`` (then any number of maps), as PyTorch's PReLU(maps) / PReLU()."""

    def __init__(self, maps, sharedMaps=False, dtype=numpy.float32, name=None):
        super().__init__(name)
        self.maps = checkSize(maps, "PRelu maps")
        if not isinstance(sharedMaps, bool):
            raise ModuleError(f"PRelu sharedMaps must be True or False, got {sharedMaps!r}")
        self.sharedMaps = sharedMaps
        self.setVar("slopes", Variable(xp.full((1 if sharedMaps else maps,), 0.25, dtype=dtype), name="slopes"))

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", dtype=self.slopes.dtype)
        if data.ndim < 2 or (not self.sharedMaps and data.shape[1] != self.maps):
            maps = "maps" if self.sharedMaps else self.maps
            raise ModuleError(f"{self!r}: input must have shape (batch, {maps}, ...), got {data.shape}")

    def _layout(self, data):
        """(maps, spatial) of the kernels' loop: one slope for everything when shared."""
        if self.sharedMaps:
            return 1, 1
        return self.maps, int(numpy.prod(data.shape[2:], dtype=numpy.int64))

    def updData(self, data):
        data = xp.ascontiguousarray(data)
        return preluKer(data, self.slopes, *self._layout(data), xp.empty_like(data))

    def updGrad(self, grad):
        grad, x = xp.ascontiguousarray(grad), xp.ascontiguousarray(self.inData)
        return preluGradKer(grad, x, self.slopes, *self._layout(x), xp.empty_like(grad))

    def accGradParams(self, grad):
        product = grad * xp.minimum(self.inData, 0)
        axes = tuple(range(product.ndim)) if self.sharedMaps else (0,) + tuple(range(2, product.ndim))
        self.vars["slopes"].grad += product.sum(axis=axes).reshape(self.slopes.shape)
