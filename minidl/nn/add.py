"""Add: data = Σ inputs (of one shape); each input's gradient is the incoming gradient."""

from minidl.backend import xp
from minidl.nn.merge import Merge


class Add(Merge):
    """Sums two or more inputs of one shape and dtype (a graph's fan-in)."""

    combine = staticmethod(xp.add)

    def updGrad(self, grad):
        return [grad] * len(self.inData)
