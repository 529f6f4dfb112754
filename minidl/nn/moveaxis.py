"""MoveAxis: axis ``src`` of the input moved to position ``dst``, the others keeping their order
(numpy.moveaxis; copied C-contiguous); the gradient is moved back from ``dst`` to ``src``."""

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArray
from minidl.validation import checkInteger


class MoveAxis(Module):
    """``MoveAxis(1, 3)``: NCHW to NHWC. Negative axes count from the end; ``src == dst`` is refused."""

    def __init__(self, src, dst, name=None):
        super().__init__(name)
        self.src, self.dst = checkInteger(src, "MoveAxis src"), checkInteger(dst, "MoveAxis dst")
        if self.src == self.dst:
            raise ModuleError(f"MoveAxis: src and dst are both {src}: moving an axis to itself does nothing")

    def checkData(self, data):
        checkArray(data, f"{self!r}: input")
        for axis in (self.src, self.dst):
            if not -data.ndim <= axis < data.ndim:
                raise ModuleError(f"{self!r}: axis {axis} is out of range for an input of shape {data.shape}")

    def updData(self, data):
        return xp.ascontiguousarray(xp.moveaxis(data, self.src, self.dst))

    def updGrad(self, grad):
        return xp.ascontiguousarray(xp.moveaxis(grad, self.dst, self.src))
