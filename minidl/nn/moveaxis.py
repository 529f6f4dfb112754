"""MoveAxis: axis ``src`` of the input moved to position ``dst``, the others keeping their order
(numpy.moveaxis; copied C-contiguous); the gradient is moved back from ``dst`` to ``src``."""

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.module import Module
from minidl.nn.transpose import checkAxes
from minidl.validation import checkInteger


class MoveAxis(Module):
    """``MoveAxis(1, 3)``: NCHW to NHWC. Negative axes count from the end; ``src == dst`` is refused."""

    def __init__(self, src, dst, name=None):
        super().__init__(name)
        self.src, self.dst = checkInteger(src, "MoveAxis src"), checkInteger(dst, "MoveAxis dst")
        if self.src == self.dst:
            raise ModuleError(f"MoveAxis: src and dst are both {src}: moving an axis to itself does nothing")

    def checkData(self, data):
        checkAxes(self, data, (self.src, self.dst))

    def updData(self, data):
        return xp.ascontiguousarray(xp.moveaxis(data, self.src, self.dst))

    def updGrad(self, grad):
        return xp.ascontiguousarray(xp.moveaxis(grad, self.dst, self.src))
