"""Add: data = Σ inputs (of one shape); each input's gradient is the incoming gradient."""

from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray


class Add(Module):
    """Sums two or more inputs of one shape and dtype (a graph's fan-in)."""

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
            out += item
        return out

    def updGrad(self, grad):
        return [grad] * len(self.inData)
