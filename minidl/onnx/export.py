"""export: a module's eval-mode graph as an ONNX file, checked by onnx.checker before it is written.

The export runs the module once in evalMode on ``sampleInput`` (its mode is put back afterwards), so that
exporters know their inputs' shapes and dtypes, then adds each module's nodes through the registry. The
graph's input ``input`` (or ``input0``, ``input1``... for a Graph with several) has the sample's shape except
on the axes of ``dynamicAxes``, which are named dimensions that take any size: ``{0: "batch"}`` by default;
``{0: "time", 1: "batch"}`` for (time, batch, ...) sequences; a list gives one dict per input (an RNN's
initial states have no time axis: ``[{0: "time", 1: "batch"}, {1: "batch"}]``). Outputs are ``output``
(``output0``...), their shapes inferred by ONNX.
"""

import numpy
import onnx
from onnx import helper

from minidl.atomicfile import writeAtomically
from minidl.backend import xp
from minidl.errors import ExportError
from minidl.nn.module import Module, describe, evaluating
from minidl.onnx.graphbuilder import GraphBuilder
from minidl.onnx.registry import EXPORTERS, exportModule

OPSET = 17  # ONNX Runtime 1.14 and later, TensorRT 8.6 and later read it; LayerNormalization is in it
BATCH = {0: "batch"}  # the default dynamic axes: the batch, axis 0 of every input


def checkExportable(module):
    """ExportError naming every module of the tree that has no ONNX exporter."""
    missing = list({id(inner): inner for inner in module.walk() if type(inner) not in EXPORTERS}.values())
    if missing:
        exportable = sorted(moduleType.__name__ for moduleType in EXPORTERS)
        raise ExportError(f"no ONNX exporter for {', '.join(f'{m!r} ({type(m).__name__})' for m in missing)}; "
                          f"exportable modules: {exportable}")


def _inputsOf(sampleInput, dynamicAxes):
    """The sample as a list of device arrays and, for each, its dict of dynamic axes, every axis within it."""
    samples = list(sampleInput) if isinstance(sampleInput, (list, tuple)) else [sampleInput]
    if not all(isinstance(sample, xp.ndarray) for sample in samples):
        raise ExportError(f"sampleInput must be a device array, or a list of them (one per graph input), got "
                          f"{describe(sampleInput)}")
    axesList = list(dynamicAxes) if isinstance(dynamicAxes, (list, tuple)) else [dynamicAxes] * len(samples)
    if len(axesList) != len(samples) or not all(isinstance(axes, dict) for axes in axesList):
        raise ExportError(f"dynamicAxes must be a dict {{axis: name}} or a list of {len(samples)} such dicts (one "
                          f"per input), got {dynamicAxes!r}")
    for index, (sample, axes) in enumerate(zip(samples, axesList)):
        for axis, name in axes.items():
            valid = not isinstance(axis, bool) and isinstance(axis, int) and 0 <= axis < sample.ndim
            if not valid or not isinstance(name, str) or not name:
                raise ExportError(f"dynamicAxes of input {index} (shape {sample.shape}): expected axes in "
                                  f"[0, {sample.ndim}) named by non-empty strings, got {axes!r}")
    return samples, axesList


def _valueInfo(name, array, axes):
    shape = [axes.get(axis, side) for axis, side in enumerate(array.shape)]
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(numpy.dtype(array.dtype)), shape)


def buildModel(module, sampleInput, dynamicAxes=BATCH, opset=OPSET):
    """The checked onnx.ModelProto of ``module`` in eval mode (see the module docstring); writes nothing."""
    if not isinstance(module, Module):
        raise ExportError(f"export takes a minidl Module, got {type(module).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not OPSET <= opset <= newest:
        raise ExportError(f"opset must be an int in [{OPSET}, {newest}]: the exporters write opset {OPSET}'s "
                          f"operators (a later opset where onnx.checker finds them unchanged), got {opset!r}")
    checkExportable(module)
    samples, axesList = _inputsOf(sampleInput, dynamicAxes)
    with evaluating(module):
        module(samples[0] if len(samples) == 1 else samples)
        cache = module.saveCache()

    builder = GraphBuilder()
    inputNames = ["input"] if len(samples) == 1 else [f"input{index}" for index in range(len(samples))]
    outputs = exportModule(builder, module, inputNames, cache)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    outputNames = ["output"] if len(outputs) == 1 else [f"output{index}" for index in range(len(outputs))]
    for name, outputName in zip(outputs, outputNames):
        if name in inputNames or name in {init.name for init in builder.initializers} or name in outputNames:
            builder.nodes.append(helper.make_node("Identity", [name], [outputName]))
        else:
            builder.rename(name, outputName)

    graph = helper.make_graph(
        builder.nodes, type(module).__name__,
        [_valueInfo(name, sample, axes) for name, sample, axes in zip(inputNames, samples, axesList)],
        [helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None) for name in outputNames],
        builder.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="minidl")
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportError(f"the ONNX graph of {module!r} does not pass onnx.checker: {error}") from error
    return model


def export(module, path, sampleInput, dynamicAxes=BATCH, opset=OPSET):
    """Write ``module``'s eval-mode graph to ``path`` as ONNX at ``opset``; returns the onnx.ModelProto.

    ExportError, before anything is written, for a module without an exporter or a graph that onnx.checker
    refuses. The file is written atomically (``minidl.atomicfile``): a failed write keeps the previous one.
    """
    model = buildModel(module, sampleInput, dynamicAxes, opset)
    writeAtomically(path, model.SerializeToString(), ExportError)
    return model

