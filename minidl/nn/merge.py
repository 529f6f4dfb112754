"""Merge: the base of Add and Mul, which combine two or more inputs of one shape and dtype elementwise (a graph's
fan-in): data = inputs[0] ∘ inputs[1] ∘ ... for the subclass's in-place operation ``combine``."""

from minidl.nn.module import Module, checkArrayList


def fold(arrays, combine):
    """arrays[0] ∘ arrays[1] ∘ ... in a new array, ``combine`` an in-place operation (operator.iadd, operator.imul)."""
    out = arrays[0].copy()
    for item in arrays[1:]:
        out = combine(out, item)
    return out


class Merge(Module):
    """A subclass names ``combine`` (a staticmethod of an in-place operator) and gives the gradients in ``updGrad``."""

    def checkData(self, data):
        checkArrayList(data, f"{self!r}: input")

    def updData(self, data):
        return fold(data, self.combine)
