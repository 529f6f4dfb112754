"""Mul: data = Π inputs elementwise (of one shape); input i's gradient is grad · Π_{j≠i} input j."""

from minidl.nn.module import Module, checkArrayList


class Mul(Module):
    """Multiplies two or more inputs of one shape and dtype elementwise (a graph's fan-in, e.g. gating)."""

    def checkData(self, data):
        checkArrayList(data, f"{self!r}: input")

    def updData(self, data):
        out = data[0].copy()
        for item in data[1:]:
            out *= item
        return out

    def updGrad(self, grad):
        grads = []
        for index in range(len(self.inData)):
            out = grad.copy()
            for other, item in enumerate(self.inData):
                if other != index:
                    out *= item
            grads.append(out)
        return grads
