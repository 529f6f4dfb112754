"""Add: data = Σ inputs (of one shape); each input's gradient is the incoming gradient."""

from minidl.backend import xp
from minidl.nn.module import Module, checkArrayList


class Add(Module):
    """Sums two or more inputs of one shape and dtype (a graph's fan-in)."""

    def checkData(self, data):
        checkArrayList(data, f"{self!r}: input")

    def updData(self, data):
        """data[0] + data[1] into a new array (one launch, no copy first), then the others added in place."""
        out = xp.add(data[0], data[1]) if len(data) > 1 else data[0].copy()
        for item in data[2:]:
            out += item
        return out

    def updGrad(self, grad):
        return [grad] * len(self.inData)
