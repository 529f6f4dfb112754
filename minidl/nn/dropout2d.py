"""Dropout2D: dropout of whole maps. On (N, C, ...) data, in trainMode, per (n, c) map one u uniform in [0, 1)
is drawn, and

    y[n, c] = x[n, c] / (1 - p)   where u[n, c] >= p,   else 0 (x · 0: NaN and infinities stay NaN there);

backward applies the same mask to the gradient. In evalMode, or with p = 0, it is the identity and draws
nothing. The uniforms come from ``minidl.backend.generator()`` on the host, as Dropout's: one seed gives the same
masks on every device, at the cost of a copy of 4 bytes per map each forward pass.
"""

import numpy

from minidl.backend import Elementwise, generator, toDevice, xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.validation import checkNumber


def _dropout2dNumpy(x, uniform, p, scale, spatial, y):
    factor = (uniform >= p).astype(x.dtype) * scale
    numpy.multiply(x.reshape(-1, spatial), factor[:, None], out=y.reshape(-1, spatial))


# element i of (N C, spatial) data belongs to map i / spatial
dropout2dKer = Elementwise(
    "minidl_dropout2d",
    "T x, raw float32 uniform, float32 p, T scale, int32 spatial",
    "T y",
    "y = x * (uniform[i / spatial] < p ? (T)0 : scale)",
    _dropout2dNumpy,
)


class Dropout2D(Module):
    """``Dropout2D(p=0.5)``: each (sample, map) plane of (N, C, ...) data is zeroed with probability p in
    trainMode (0 <= p < 1), as PyTorch's Dropout2d."""

    cacheAttrs = ("inData", "data", "uniform")

    def __init__(self, p=0.5, name=None):
        super().__init__(name)
        self.p = checkNumber(p, "Dropout2D probability p", low=0, high=1, highOpen=True)
        self.uniform = None

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        if not numpy.issubdtype(data.dtype, numpy.floating) or data.ndim < 3:
            raise ModuleError(f"{self!r}: input must be floating (batch, maps, ...) data with at least one spatial "
                              f"axis, got {data.dtype} {data.shape}")

    def updData(self, data):
        if not self.train or self.p == 0:
            self.uniform = None
            return data
        self.uniform = toDevice(generator().random(data.shape[:2], dtype=numpy.float32))
        return self._mask(data)

    def updGrad(self, grad):
        return grad if self.uniform is None else self._mask(grad)

    def _mask(self, array):
        array = xp.ascontiguousarray(array)
        spatial = array.size // max(self.uniform.size, 1)
        return dropout2dKer(array, self.uniform, self.p, 1 / (1 - self.p), spatial, xp.empty_like(array))
