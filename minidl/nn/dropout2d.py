"""Dropout2D: dropout of whole maps. On (N, C, ...) data, in trainMode, per (n, c) map one u uniform in [0, 1)
is drawn, and

    y[n, c] = x[n, c] / (1 - p)   where u[n, c] >= p,   else 0 (x · 0: NaN and infinities stay NaN there);

backward applies the same mask to the gradient. In evalMode, or with p = 0, it is the identity and draws
nothing. u[n, c] is Philox4x32-10's uniform of element n·C + c of one device draw, computed in place by the
kernel as Dropout's (``minidl.nn.dropout``): nothing drawn on the host, copied or stored; one seed gives the same
masks on every device and path.
"""

import numpy

from minidl.backend import Elementwise, xp
from minidl.backend.philox import PREAMBLE, uniformNumpy
from minidl.errors import ModuleError
from minidl.nn.dropout import Dropout
from minidl.nn.module import checkArray


def _dropout2dNumpy(x, seed, counter, p, scale, spatial, y):
    factor = (uniformNumpy(seed, counter, numpy.arange(x.size // spatial)) >= p).astype(x.dtype) * scale
    numpy.multiply(x.reshape(-1, spatial), factor[:, None], out=y.reshape(-1, spatial))


# element i of (N C, spatial) data belongs to map i / spatial
dropout2dKer = Elementwise(
    "minidl_dropout2d",
    "T x, uint64 seed, uint64 counter, float32 p, T scale, int32 spatial",
    "T y",
    "y = x * (minidl_uniform(seed, counter, i / spatial) < p ? (T)0 : scale)",
    _dropout2dNumpy,
    preamble=PREAMBLE,
)


class Dropout2D(Dropout):
    """``Dropout2D(p=0.5)``: each (sample, map) plane of (N, C, ...) data is zeroed with probability p in
    trainMode (0 <= p < 1), as PyTorch's Dropout2d."""

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        if not numpy.issubdtype(data.dtype, numpy.floating) or data.ndim < 3:
            raise ModuleError(f"{self!r}: input must be floating (batch, maps, ...) data with at least one spatial "
                              f"axis, got {data.dtype} {data.shape}")

    def mask(self, array):
        array = xp.ascontiguousarray(array)
        spatial = max(int(numpy.prod(array.shape[2:])), 1)
        return dropout2dKer(array, *self.draw, self.p, 1 / (1 - self.p), spatial, xp.empty_like(array))
