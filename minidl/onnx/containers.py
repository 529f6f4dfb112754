"""Exporters of the containers: a Sequential chains its children, a Graph wires its nodes as in forward, a
Parallel runs child k on input k."""

from minidl.nn.graph import Graph
from minidl.nn.parallel import Parallel
from minidl.nn.sequential import Sequential
from minidl.onnx.registry import exporter, exportModule


@exporter(Sequential)
def exportSequential(builder, module, inputs, cache):
    names = inputs
    for child, childCache in zip(module.modules, cache["caches"]):
        names = exportModule(builder, child, names if isinstance(names, list) else [names], childCache)
    return names


@exporter(Graph)
def exportGraph(builder, module, inputs, cache):
    outputs = {}
    if len(module.inputs) == 1:  # as in forward: a single input node takes all the data ([data, padding]...)
        inputNames = {id(module.inputs[0]): inputs}
    else:
        inputNames = {id(node): [name] for node, name in zip(module.inputs, inputs)}
    for node in module.nodes:
        if node.parents:
            picked = [outputs[id(parent)] if index is None else outputs[id(parent)][index]
                      for parent, index in zip(node.parents, node.outputIndices)]
            # one parent with several outputs (a Split) hands its module the whole list, as in forward
            nodeInputs = picked[0] if len(picked) == 1 and isinstance(picked[0], list) else picked
        else:
            nodeInputs = inputNames[id(node)]
        outputs[id(node)] = exportModule(builder, node.module, nodeInputs, cache["caches"][id(node)])
    results = [outputs[id(node)] for node in module.outputs]
    return results[0] if len(results) == 1 else results


@exporter(Parallel)
def exportParallel(builder, module, inputs, cache):
    return [exportModule(builder, child, [name], childCache)
            for child, name, childCache in zip(module.modules, inputs, cache["caches"])]
