"""Mul: data = Π inputs elementwise (of one shape); input i's gradient is grad · Π_{j≠i} input j."""

from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray


class Mul(Module):
    """Multiplies two or more inputs of one shape and dtype elementwise (a graph's fan-in, e.g. gating)."""

    def checkData(self, data):
        if not isinstance(data, (list, tuple)) or len(data) < 2:
            raise ModuleError(f"{self!r}: input must be a list of at least 2 arrays, got {type(data).__name__}")
        for index, item in enumerate(data):
            checkArray(item, f"{self!r}: input[{index}]", dtype=data[0].dtype)
            if item.shape != data[0].shape:
                raise ModuleError(f"{self!r}: inputs must have one shape, got {[a.shape for a in data]}")

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
