"""KMaxPool: the k largest values along one axis, kept in their original order (PuzzleLib's KMaxPool, the
k-max pooling of Kalchbrenner et al.'s sentence CNNs).

Along ``axis`` (length L >= k), with i_1 < ... < i_k the positions of the k largest values,

    y[..., j, ...] = x[..., i_j, ...],   ∂x[..., i_j, ...] = grad[..., j, ...], 0 at the other positions.

A NaN counts as larger than every number (it propagates, as in max pooling); among equal values the earlier
position wins. The positions come from a stable sort of the reversed axis (equal values keep their reversed
order, so the last k of the sort are the k largest, earlier positions first among ties), sorted back into
ascending order; then a gather forward and a scatter of distinct positions backward.
"""

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.validation import checkInteger, checkSize


class KMaxPool(Module):
    """``KMaxPool(k, axis=-1)`` on data of any rank whose ``axis`` holds at least k values."""

    cacheAttrs = ("inData", "data", "positions")

    def __init__(self, k, axis=-1, name=None):
        super().__init__(name)
        self.k, self.axis = checkSize(k, "KMaxPool k"), checkInteger(axis, "KMaxPool axis")
        self.positions = None  # (..., k) with the pooled axis last: where each output value came from

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        if not -data.ndim <= self.axis < data.ndim:
            raise ModuleError(f"{self!r}: axis {self.axis} is outside an input of shape {data.shape}")
        if data.shape[self.axis] < self.k:
            raise ModuleError(f"{self!r}: axis {self.axis} must hold at least k={self.k} values, got shape "
                              f"{data.shape}")

    def updData(self, data):
        last = xp.moveaxis(data, self.axis, -1)
        length = last.shape[-1]
        order = xp.argsort(last[..., ::-1], axis=-1, kind="stable")[..., length - self.k:]  # NaN last
        self.positions = xp.sort(length - 1 - order, axis=-1)
        out = xp.take_along_axis(last, self.positions, axis=-1)
        return xp.ascontiguousarray(xp.moveaxis(out, -1, self.axis))

    def updGrad(self, grad):
        gradX = xp.zeros(xp.moveaxis(self.inData, self.axis, -1).shape, dtype=grad.dtype)
        xp.put_along_axis(gradX, self.positions, xp.moveaxis(grad, self.axis, -1), axis=-1)
        return xp.ascontiguousarray(xp.moveaxis(gradX, -1, self.axis))
