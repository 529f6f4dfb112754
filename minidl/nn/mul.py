"""Mul: data = Π inputs elementwise (of one shape); input i's gradient is grad · Π_{j≠i} input j."""

import operator

from minidl.nn.merge import Merge, fold


class Mul(Merge):
    """Multiplies two or more inputs of one shape and dtype elementwise (a graph's fan-in, e.g. gating)."""

    combine = staticmethod(operator.imul)

    def updGrad(self, grad):
        return [fold([grad] + [item for other, item in enumerate(self.inData) if other != index], operator.imul)
                for index in range(len(self.inData))]
