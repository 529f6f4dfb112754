"""ToList: nested lists of arrays flattened into one list in depth-first order ([[a, b], c] to [a, b, c]);
the gradient list is nested back as the input was."""

from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray


def _flatten(data, out, what):
    if isinstance(data, (list, tuple)):
        if not data:
            raise ModuleError(f"{what}: an empty list holds no array")
        for index, item in enumerate(data):
            _flatten(item, out, f"{what}[{index}]")
    else:
        checkArray(data, what)
        out.append(data)
    return out


def _nest(flat, like, position=0):
    """``flat``'s items from ``position`` nested as ``like`` is; returns (nested, next position)."""
    if not isinstance(like, (list, tuple)):
        return flat[position], position + 1
    nested = []
    for item in like:
        piece, position = _nest(flat, item, position)
        nested.append(piece)
    return nested, position


class ToList(Module):
    """``ToList()``: takes an array or nested lists of arrays, returns a flat list."""

    def checkData(self, data):
        _flatten(data, [], f"{self!r}: input")

    def updData(self, data):
        return _flatten(data, [], "input")

    def updGrad(self, grad):
        return _nest(grad, self.inData)[0]
