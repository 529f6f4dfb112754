"""MoveAxis: axis ``src`` of the input moved to position ``dst``, the others keeping their order
(numpy.moveaxis; copied C-contiguous); the gradient is moved back from ``dst`` to ``src``."""

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.transpose import AxisPair
from minidl.validation import checkInteger


class MoveAxis(AxisPair):
    """``MoveAxis(1, 3)``: NCHW to NHWC. Negative axes count from the end; ``src == dst`` is refused."""

    def __init__(self, src, dst, name=None):
        super().__init__(name)
        self.src, self.dst = checkInteger(src, "MoveAxis src"), checkInteger(dst, "MoveAxis dst")
        if self.src == self.dst:
            raise ModuleError(f"MoveAxis: src and dst are both {src}: moving an axis to itself does nothing")

    @property
    def pair(self):
        return self.src, self.dst

    def move(self, array, first, second):
        return xp.moveaxis(array, first, second)
