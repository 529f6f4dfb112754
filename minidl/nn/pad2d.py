"""Pad2D: rows and columns added around each map of (N, C, H, W) data.

Modes, as PyTorch's F.pad: "constant" (``value``), "reflect" (mirrored about the edge pixel, which is not
repeated: each pad must be smaller than the side) and "replicate" (the edge pixel repeated). Reflect and
replicate gather the source row and column of each output row and column (``gather2d``); their gradient sums,
for every source pixel, the gradients of the outputs copied from it (``scatter2d``).
"""

import numbers

import numpy

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.gather2d import gather2d, indices, scatter2d
from minidl.nn.module import Module, checkArray

MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}  # minidl's name -> numpy.pad's


def _sides(pad):
    """(top, bottom, left, right) from an int, a pair (rows, columns) or PyTorch's (left, right, top, bottom)."""
    items = tuple(pad) if isinstance(pad, (tuple, list, numpy.ndarray)) else (pad,)
    if len(items) not in (1, 2, 4) or not all(
            isinstance(v, (int, numpy.integer)) and not isinstance(v, bool) and v >= 0 for v in items):
        raise ModuleError(f"Pad2D: pad must be an int, a pair (rows, columns) or (left, right, top, bottom) of "
                          f"ints >= 0, got {pad!r}")
    if len(items) == 1:
        return (int(items[0]),) * 4
    if len(items) == 2:
        return int(items[0]), int(items[0]), int(items[1]), int(items[1])
    left, right, top, bottom = (int(v) for v in items)
    return top, bottom, left, right


def _sources(side, before, after, mode):
    """The source index, in [0, side), of each of the side + before + after outputs along one axis."""
    return numpy.pad(numpy.arange(side), (before, after), mode=MODES[mode])


class Pad2D(Module):
    """``Pad2D(pad, mode="constant", value=0)`` on (N, C, H, W) data; pad: an int, a pair (rows, columns) or
    (left, right, top, bottom)."""

    def __init__(self, pad, mode="constant", value=0.0, name=None):
        super().__init__(name)
        self.top, self.bottom, self.left, self.right = _sides(pad)
        if not isinstance(mode, str) or mode not in MODES:
            raise ModuleError(f"Pad2D: mode must be one of {sorted(MODES)}, got {mode!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):  # any real: -inf before a max pool
            raise ModuleError(f"Pad2D: value must be a real number, got {value!r}")
        self.mode, self.value = mode, float(value)

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=4, floating=True)
        height, width = data.shape[2:]
        if self.mode == "reflect" and (max(self.top, self.bottom) >= height or max(self.left, self.right) >= width):
            raise ModuleError(f"{self!r}: reflect pads (top, bottom, left, right) = "
                              f"{(self.top, self.bottom, self.left, self.right)} must be smaller than the "
                              f"input's sides {(height, width)}")

    def _sources(self, shape):
        height, width = shape[2:]
        return (_sources(height, self.top, self.bottom, self.mode), _sources(width, self.left, self.right, self.mode))

    def updData(self, data):
        batch, maps, height, width = data.shape
        if self.mode == "constant":
            out = xp.full((batch, maps, height + self.top + self.bottom, width + self.left + self.right),
                          self.value, dtype=data.dtype)
            out[:, :, self.top:self.top + height, self.left:self.left + width] = data
            return out
        return gather2d(data, *(indices(sources) for sources in self._sources(data.shape)))

    def updGrad(self, grad):
        height, width = self.inData.shape[2:]
        if self.mode == "constant":
            return xp.ascontiguousarray(grad[:, :, self.top:self.top + height, self.left:self.left + width])
        return scatter2d(grad, *(indices(sources) for sources in self._sources(self.inData.shape)), height, width)
