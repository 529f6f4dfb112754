"""checkExport: export a module, check the file, run it in ONNX Runtime (CPU) at another batch size and
compare with minidl's eval-mode output (float32, relative 1e-5: see assertClose)."""

import numpy
import pytest

from minidl.backend import toDevice, toHost
from minidl.onnx import OPSET, export

onnx = pytest.importorskip("onnx", reason="the ONNX tests need the test extra: pip install 'minidl[test]'")
onnxruntime = pytest.importorskip("onnxruntime", reason="the ONNX tests need onnxruntime (the test extra)")

RTOL = 1e-5


def assertClose(actual, expected):
    """Equal within 1e-5 of each value, or of the output's largest magnitude for values near zero (float32
    sums of many terms lose digits to cancellation there, whichever program computes them)."""
    expected = numpy.asarray(expected)
    scale = float(numpy.abs(expected).max()) if expected.size else 0.0
    numpy.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * max(scale, 1e-1))


def checkExport(module, path, sample, runInput=None, dynamicAxes=None):
    """Export ``module`` with ``sample`` (host array or list of them), run the file on ``runInput`` (default:
    the sample) and assert ONNX Runtime's outputs equal minidl's eval-mode outputs; returns the ONNX model."""
    samples = sample if isinstance(sample, list) else [sample]
    runs = samples if runInput is None else (runInput if isinstance(runInput, list) else [runInput])
    wasTraining = module.train
    dynamicAxes = {0: "batch"} if dynamicAxes is None else dynamicAxes
    export(module, path, [toDevice(s) for s in samples] if isinstance(sample, list) else toDevice(sample),
           dynamicAxes=dynamicAxes)
    assert module.train == wasTraining, "export puts the module's mode back"

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert [(op.domain, op.version) for op in model.opset_import] == [("", OPSET)]
    axesList = dynamicAxes if isinstance(dynamicAxes, list) else [dynamicAxes] * len(samples)
    for graphInput, sampleArray, axes in zip(model.graph.input, samples, axesList):
        dims = [dim.dim_param or dim.dim_value for dim in graphInput.type.tensor_type.shape.dim]
        assert dims == [axes.get(axis, side) for axis, side in enumerate(sampleArray.shape)]

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {graphInput.name: run for graphInput, run in zip(session.get_inputs(), runs)}
    got = session.run(None, feeds)

    module.evalMode()
    try:
        expected = module(toDevice(runs[0]) if len(runs) == 1 else [toDevice(run) for run in runs])
    finally:
        module.trainMode() if wasTraining else module.evalMode()
    expected = expected if isinstance(expected, list) else [expected]
    assert len(got) == len(expected)
    for ours, theirs in zip(expected, got):
        ours = toHost(ours)
        assert theirs.shape == ours.shape and theirs.dtype == ours.dtype
        assertClose(theirs, ours)
    return model
