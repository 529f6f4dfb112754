"""Merge: the base of Add and Mul, which combine two or more inputs of one shape and dtype elementwise (a graph's
fan-in): data = inputs[0] ∘ inputs[1] ∘ ... for the subclass's ufunc ``combine``."""

from minidl.nn.module import Module, checkArrayList


def fold(arrays, combine):
    """arrays[0] ∘ arrays[1] ∘ ... in a new array, ``combine`` a ufunc (xp.add, xp.multiply): the first two combined
    into it in one launch (no copy first), the others in place."""
    out = combine(arrays[0], arrays[1]) if len(arrays) > 1 else arrays[0].copy()
    for item in arrays[2:]:
        combine(out, item, out=out)
    return out


class Merge(Module):
    """A subclass names ``combine`` (a staticmethod of a ufunc) and gives the gradients in ``updGrad``."""

    def checkData(self, data):
        checkArrayList(data, f"{self!r}: input")

    def updData(self, data):
        return fold(data, self.combine)
