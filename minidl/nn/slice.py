"""Slice: a box of the input cut out by one slice per leading axis, y = x[s₀, s₁, ...] (every axis kept);
the gradient is zero outside the box: ∂e/∂x = 0 everywhere but x[s₀, s₁, ...] = grad."""

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray


def _triple(item, position):
    """(start, stop, step) of one axis' slice, given as a slice, a (start, stop, step) triple or None."""
    if item is None:
        item = slice(None)
    if isinstance(item, (tuple, list)) and len(item) == 3:
        item = slice(*item)
    if not isinstance(item, slice):
        raise ModuleError(f"Slice: axis {position} needs a slice (or a (start, stop, step) triple), got {item!r}")
    for part in (item.start, item.stop, item.step):
        if part is not None and (isinstance(part, bool) or not isinstance(part, int)):
            raise ModuleError(f"Slice: axis {position}'s slice {item!r} must hold integers or None")
    if item.step == 0:
        raise ModuleError(f"Slice: axis {position}'s slice {item!r} has a step of 0")
    return item.start, item.stop, item.step


class Slice(Module):
    """``Slice((slice(None), slice(1, -1)))`` or, as in the framework minidl follows, ``Slice()[:, 1:-1]``:
    the slices apply to the leading axes (batch axis first); the axes after them are taken whole."""

    def __init__(self, slices=None, name=None):
        super().__init__(name)
        self.slices = None
        if slices is not None:
            self[slices if isinstance(slices, tuple) else (slices,)]

    def __getitem__(self, slices):
        """Set the slices (``Slice()[:, 2:5]``) and return the module."""
        slices = slices if isinstance(slices, tuple) else (slices,)
        if not slices:
            raise ModuleError("Slice needs at least one slice")
        self.slices = tuple(_triple(item, position) for position, item in enumerate(slices))
        return self

    def constructorArguments(self):
        return (self.slices,), {}

    def key(self):
        return tuple(slice(*triple) for triple in self.slices)

    def checkData(self, data):
        if self.slices is None:
            raise ModuleError(f"{self!r}: no slices set: Slice()[:, 1:3] or Slice((slice(None), slice(1, 3)))")
        checkArray(data, f"{self!r}: input")
        if data.ndim < len(self.slices):
            raise ModuleError(f"{self!r}: input needs at least {len(self.slices)} axes, got shape {data.shape}")
        if 0 in data[self.key()].shape:
            raise ModuleError(f"{self!r}: the slices {self.key()} leave nothing of an input of shape {data.shape}")

    def updData(self, data):
        return xp.ascontiguousarray(data[self.key()])

    def updGrad(self, grad):
        ingrad = xp.zeros_like(self.inData)
        ingrad[self.key()] = grad
        return ingrad
