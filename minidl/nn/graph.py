"""Graph: a directed acyclic graph of Nodes, each running a module on its parents' outputs.

    inp = Linear(128, 64).node()                       # a node without parents is a graph input
    out = Linear(64, 1).node(Activation(relu).node(inp))
    net = Graph(inputs=inp, outputs=out)

A node with one parent passes that parent's output to its module, a node with several passes the list
(for merge modules: Add, Concat). A module with several outputs (Split) returns a list; ``node[i]`` stands
for its output i as a parent: ``Linear(4, 2).node(splitNode[1])``. Backward visits nodes in reverse
topological order; a node whose output feeds several children (fan-out) receives the sum of their
gradients (output by output for a multi-output node, zeros for an output no child reads), and a module
used by several nodes accumulates the parameter gradients of every use. A module whose input takes no
gradient (an Embedder's indices) returns None, and nothing flows back past it.
"""

from functools import reduce

from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.add import add
from minidl.nn.container import Container, uniqueNames
from minidl.nn.module import Node, describe
from minidl.nn.toposort import topologicalOrder


def _pickOutput(data, index, child):
    if index is None:
        return data
    if not isinstance(data, list) or index >= len(data):
        raise ModuleError(f"{child!r} reads output {index} of a parent whose output is {describe(data)}")
    return data[index]


def _sumGrads(received, data):
    """The gradient of a node's output ``data`` from (output index or None, gradient) pairs its readers sent."""
    if not isinstance(data, list):
        return reduce(add, (grad for _, grad in received))  # a new array when several gradients meet
    pieces = [[] for _ in data]
    for index, grad in received:
        if index is None:
            for piece, item in zip(pieces, grad):
                piece.append(item)
        else:
            pieces[index].append(grad)
    return [reduce(add, piece) if piece else xp.zeros_like(item) for piece, item in zip(pieces, data)]


def _asList(nodes, what):
    nodes = list(nodes) if isinstance(nodes, (list, tuple)) else [nodes]
    if not nodes or not all(isinstance(node, Node) for node in nodes):
        raise ModuleError(f"Graph {what} must be a Node or a non-empty list of Nodes, got {nodes!r}")
    if len({id(node) for node in nodes}) != len(nodes):
        raise ModuleError(f"Graph {what} list a node twice: {nodes!r}")
    return nodes


class Graph(Container):
    """A module made of a DAG of nodes, with one or several inputs and outputs."""

    def __init__(self, inputs, outputs, name=None):
        super().__init__(name)
        self.inputs = _asList(inputs, "inputs")
        self.outputs = _asList(outputs, "outputs")
        self.nodes = topologicalOrder(self.outputs)
        self._checkInputs()
        self.modules = uniqueNames([node.module for node in self.nodes])
        self.passing = {}  # updGrad -> {id(node): whether its backward computes ∂input} (``_passing``)

    def _checkInputs(self):
        inputIds = {id(node) for node in self.inputs}
        for node in self.inputs:
            if node.parents:
                raise ModuleError(f"graph input {node!r} has parents; inputs must be nodes made with node()")
        for node in self.nodes:
            if not node.parents and id(node) not in inputIds:
                raise ModuleError(
                    f"{node!r} has no parents and is not among the graph's inputs {self.inputs!r}: "
                    "an output is not reachable from the inputs alone"
                )
        reached = {id(node) for node in self.nodes}
        for node in self.inputs:
            if id(node) not in reached:
                raise ModuleError(f"graph input {node!r} does not lead to any output")

    def children(self):
        return self.modules

    def uses(self):
        names = {id(module): name for name, module in self.modules.items()}
        caches = self.caches or {}
        return [(names[id(node.module)], node.module, caches[id(node)]) for node in self.nodes if id(node) in caches]

    def toDot(self):
        """The graph in Graphviz's DOT language: a box per node, an arrow per parent (labelled [i] for node[i])."""
        from minidl.nn.picture import graphToDot

        return graphToDot(self)

    def draw(self, path):
        """Write a picture of the graph: DOT text for ``.dot``; ``.svg`` or ``.png`` through Graphviz's ``dot``
        when it is installed, else the DOT text beside it (``.dot``) with a warning. Returns the path written."""
        from minidl.nn.picture import drawGraph

        return drawGraph(self, path)

    def forward(self, data):
        inputs = self._splitInputs(data)
        outputs, caches = {}, {}
        for node in self.nodes:
            if node.parents:
                parentData = [_pickOutput(outputs[id(parent)], index, node)
                              for parent, index in zip(node.parents, node.outputIndices)]
                nodeInput = parentData[0] if len(parentData) == 1 else parentData
            else:
                nodeInput = inputs[id(node)]
            outputs[id(node)] = node.module(nodeInput)
            caches[id(node)] = node.module.saveCache()
        self.inData, self.caches = data, caches
        results = [outputs[id(node)] for node in self.outputs]
        self.data = results[0] if len(results) == 1 else results
        return self.data

    def _splitInputs(self, data):
        if len(self.inputs) == 1:
            return {id(self.inputs[0]): data}
        if not isinstance(data, (list, tuple)) or len(data) != len(self.inputs):
            raise ModuleError(f"{self!r} expects a list of {len(self.inputs)} inputs, got {describe(data)}")
        return {id(node): item for node, item in zip(self.inputs, data)}

    def _passing(self, updGrad):
        """Per node, whether its backward computes ∂input: an input node's when the graph's ``updGrad`` asks for
        the inputs' gradients, another's when a parent takes one, that is has parameters or passes a gradient on
        itself. A network's first convolution then computes no ∂x for its images (the residual CNN's took 0.5 ms of
        a 25 ms step)."""
        passing, taking = {}, {}
        for node in self.nodes:  # parents first
            passing[id(node)] = any(taking[id(parent)] for parent in node.parents) if node.parents else updGrad
            taking[id(node)] = passing[id(node)] or bool(node.module.getVarTable())
        return passing

    def backward(self, grad, updGrad=True):
        self.checkGrad(grad)
        outputGrads = grad if len(self.outputs) > 1 else [grad]
        incoming = {id(node): [] for node in self.nodes}
        for node, outputGrad in zip(self.outputs, outputGrads):
            incoming[id(node)].append((None, outputGrad))

        inputGrads = {}
        if updGrad not in self.passing:
            self.passing[updGrad] = self._passing(updGrad)
        passing = self.passing[updGrad]
        for node in reversed(self.nodes):
            if not incoming[id(node)]:  # its readers take no gradient (an Embedder's indices): none flows back
                continue
            node.module.restoreCache(self.caches[id(node)])
            nodeGrad = _sumGrads(incoming[id(node)], node.module.data)
            parentGrads = node.module.backward(nodeGrad, updGrad=passing[id(node)])
            if not node.parents:
                inputGrads[id(node)] = parentGrads
                continue
            if parentGrads is None:  # no parent takes a gradient (see _passing)
                continue
            parentGrads = [parentGrads] if len(node.parents) == 1 else parentGrads
            for parent, index, parentGrad in zip(node.parents, node.outputIndices, parentGrads):
                if parentGrad is not None:
                    incoming[id(parent)].append((index, parentGrad))

        results = [inputGrads.get(id(node)) for node in self.inputs]
        self.grad = results[0] if len(results) == 1 else results
        return self.grad
