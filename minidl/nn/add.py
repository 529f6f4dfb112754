"""Add: data = Σ inputs (of one shape); each input's gradient is the incoming gradient."""

from minidl.nn.module import Module, checkArrayList


class Add(Module):
    """Sums two or more inputs of one shape and dtype (a graph's fan-in)."""

    def checkData(self, data):
        checkArrayList(data, f"{self!r}: input")

    def updData(self, data):
        out = data[0].copy()
        for item in data[1:]:
            out += item
        return out

    def updGrad(self, grad):
        return [grad] * len(self.inData)
