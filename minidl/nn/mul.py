"""Mul: data = Π inputs elementwise (of one shape); input i's gradient is grad · Π_{j≠i} input j."""

from minidl.backend import xp
from minidl.nn.merge import Merge, fold


class Mul(Merge):
    """Multiplies two or more inputs of one shape and dtype elementwise (a graph's fan-in, e.g. gating)."""

    combine = staticmethod(xp.multiply)

    def updGrad(self, grad):
        return [fold([grad] + [item for other, item in enumerate(self.inData) if other != index], xp.multiply)
                for index in range(len(self.inData))]
