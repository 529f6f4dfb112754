"""export: a module's eval-mode graph as an ONNX file, checked by onnx.checker before it is written.

The export runs the module once in evalMode on ``sampleInput`` (its mode is put back afterwards), so that
exporters know their inputs' shapes and dtypes, then adds each module's nodes through the registry. The
graph's input ``input`` (or ``input0``, ``input1``... for a Graph with several) has the sample's shape with
axis ``batchAxis`` named ``batch``: any batch size runs. Outputs are ``output`` (``output0``...), their shapes
inferred by ONNX.
"""

import contextlib
import os
import tempfile

import numpy
import onnx
from onnx import helper

from minidl.backend import xp
from minidl.errors import ExportError
from minidl.nn.container import Container
from minidl.nn.module import Module, describe
from minidl.onnx.graphbuilder import GraphBuilder
from minidl.onnx.registry import EXPORTERS, exportModule

OPSET = 17  # ONNX Runtime 1.14 and later, TensorRT 8.6 and later read it; LayerNormalization is in it


def modulesOf(module):
    """The module and, for a container, every module inside it, each once, parents before children."""
    found, stack = {}, [module]
    while stack:
        current = stack.pop()
        if id(current) not in found:
            found[id(current)] = current
            if isinstance(current, Container):
                stack.extend(reversed(list(current.children().values())))
    return list(found.values())


def checkExportable(module):
    """ExportError naming every module of the tree that has no ONNX exporter."""
    missing = [inner for inner in modulesOf(module) if type(inner) not in EXPORTERS]
    if missing:
        exportable = sorted(moduleType.__name__ for moduleType in EXPORTERS)
        raise ExportError(f"no ONNX exporter for {', '.join(f'{m!r} ({type(m).__name__})' for m in missing)}; "
                          f"exportable modules: {exportable}")


def _inputsOf(sampleInput, batchAxis):
    """The sample as a list of device arrays, each with an axis ``batchAxis``."""
    samples = list(sampleInput) if isinstance(sampleInput, (list, tuple)) else [sampleInput]
    for sample in samples:
        if not isinstance(sample, xp.ndarray) or sample.ndim <= batchAxis:
            raise ExportError(f"sampleInput must be a device array (or a list of them, one per graph input) with "
                              f"an axis {batchAxis} (batchAxis), got {describe(sampleInput)}")
    return samples


@contextlib.contextmanager
def _evalMode(module):
    """Run the body with every module of the tree in evalMode, then put each one's mode back."""
    modes = [(inner, inner.train) for inner in modulesOf(module)]
    module.evalMode()
    try:
        yield
    finally:
        for inner, train in modes:
            inner.train = train


def _valueInfo(name, array, batchAxis):
    shape = ["batch" if axis == batchAxis else side for axis, side in enumerate(array.shape)]
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(numpy.dtype(array.dtype)), shape)


def buildModel(module, sampleInput, batchAxis=0, opset=OPSET):
    """The checked onnx.ModelProto of ``module`` in eval mode (see the module docstring); writes nothing."""
    if not isinstance(module, Module):
        raise ExportError(f"export takes a minidl Module, got {type(module).__name__}")
    if isinstance(batchAxis, bool) or not isinstance(batchAxis, int) or batchAxis < 0:
        raise ExportError(f"batchAxis must be a non-negative int, got {batchAxis!r}")
    checkExportable(module)
    samples = _inputsOf(sampleInput, batchAxis)
    with _evalMode(module):
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
        [_valueInfo(name, sample, batchAxis) for name, sample in zip(inputNames, samples)],
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


def export(module, path, sampleInput, batchAxis=0, opset=OPSET):
    """Write ``module``'s eval-mode graph to ``path`` as ONNX at ``opset``; returns the onnx.ModelProto.

    ExportError, before anything is written, for a module without an exporter or a graph that onnx.checker
    refuses. The file is written atomically: a failed write keeps the previous one.
    """
    model = buildModel(module, sampleInput, batchAxis, opset)
    _writeAtomically(os.fspath(path), model.SerializeToString())
    return model


def _writeAtomically(path, payload):
    folder = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as error:
        raise ExportError(f"cannot write {path}: {error}") from error
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise ExportError(f"cannot write {path}: {error}") from error
        raise
