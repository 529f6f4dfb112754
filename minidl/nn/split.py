"""Split: cuts its input along ``axis`` into pieces of the given sizes, a list of outputs; the gradient is
the pieces' gradients joined back. In a Graph, ``splitNode[i]`` feeds piece i to a child."""

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.validation import checkInteger, checkSize


class Split(Module):
    """``Split(axis=1, sections=(3, 5))``: outputs of sides 3 and 5 along axis 1 (an input of side 8)."""

    def __init__(self, axis, sections, name=None):
        super().__init__(name)
        self.axis = checkInteger(axis, "Split axis")
        if not isinstance(sections, (tuple, list)):
            raise ModuleError(f"Split sections must be a tuple of at least 2 sizes, got {sections!r}")
        self.sections = tuple(checkSize(side, f"Split sections {sections!r}: each") for side in sections)
        if len(self.sections) < 2 or min(self.sections) < 1:
            raise ModuleError(f"Split sections must be at least 2 positive sizes, got {sections!r}")

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        if not -data.ndim <= self.axis < data.ndim or data.shape[self.axis] != sum(self.sections):
            raise ModuleError(f"{self!r}: input must have side {sum(self.sections)} = sum of {self.sections} "
                              f"on axis {self.axis}, got shape {data.shape}")

    def updData(self, data):
        bounds, start = [], 0
        for side in self.sections[:-1]:
            start += side
            bounds.append(start)
        return [xp.ascontiguousarray(piece) for piece in xp.split(data, bounds, axis=self.axis)]

    def updGrad(self, grad):
        return xp.concatenate(grad, axis=self.axis)
