"""GraphBuilder: collects the ONNX nodes and initializers of one export, with unique tensor names."""

import numpy
from onnx import helper, numpy_helper

from minidl.backend import toHost


class GraphBuilder:
    """``op("Relu", [x])`` adds a node and returns its output's name; ``constant(array)`` adds an initializer
    (the same array object always gives the same initializer, so a shared module's weights are stored once)."""

    def __init__(self):
        self.nodes, self.initializers = [], []
        self.counts, self.used = {}, set()
        self.constants = {}  # id(array) -> (name, array), the array kept alive so that its id stays unique

    def fresh(self, hint):
        """A name not used before: ``hint``, else ``hint_1``, ``hint_2``..."""
        name, count = hint, self.counts.get(hint, 0)
        while name in self.used:
            count += 1
            name = f"{hint}_{count}"
        self.counts[hint] = count
        self.used.add(name)
        return name

    def constant(self, array, hint="const"):
        """The name of an initializer holding ``array`` (a device or host array, or a Python sequence)."""
        key = id(array)
        if key in self.constants:
            return self.constants[key][0]
        name = self.fresh(hint)
        hostArray = numpy.array(toHost(array) if hasattr(array, "shape") else array, order="C")  # 0-d stays 0-d
        self.initializers.append(numpy_helper.from_array(hostArray, name))
        self.constants[key] = (name, array)
        return name

    def scalar(self, value, dtype, hint="scalar"):
        """A 0-d initializer of ``value`` in ``dtype`` (not shared: each call adds a new one)."""
        return self.constant(numpy.array(value, dtype=dtype), hint)

    def op(self, opType, inputs, outputs=1, hint=None, **attributes):
        """Add a node ``opType(inputs)``; returns its output name, or the list of ``outputs`` names when
        ``outputs`` > 1."""
        names = [self.fresh(hint or opType.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(opType, list(inputs), names, name=self.fresh(f"node_{opType}"),
                                           **attributes))
        return names[0] if outputs == 1 else names

    def rename(self, old, new):
        """Call tensor ``old`` ``new`` wherever a node produces or reads it (for the graph's output names)."""
        for node in self.nodes:
            for field in (node.input, node.output):
                for index, name in enumerate(field):
                    if name == old:
                        field[index] = new
