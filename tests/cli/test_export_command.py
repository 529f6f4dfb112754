"""``minidl export``: a checkpoint becomes an ONNX file that ONNX Runtime runs to the network's outputs, and a
PyTorch state dict; the model comes from the settings ``minidl train`` keeps in its checkpoint, or from --model
for a checkpoint written otherwise, and a wrong one is refused before anything is written."""

import numpy
import pytest

from minidl.backend import seed, toDevice, toHost
from minidl.cli import main
from minidl.cli.export import loadModule
from minidl.cli.texttask import MODEL_OPTIONS, buildModel
from minidl.datasets import loadDigits
from minidl.interop import loadTorchStateDict
from minidl.models import MODELS
from minidl.nn import Linear, PRelu, Sequential
from minidl.optim import AdaGrad
from minidl.train import saveCheckpoint
from tests.onnx.onnxcheck import assertClose

onnxruntime = pytest.importorskip("onnxruntime", reason="the ONNX tests need onnxruntime (the test extra)")


def writeCheckpoint(model, path):
    """The checkpoint ``minidl train --model MODEL`` writes, for a network of random weights and statistics."""
    seed(8)
    spec = MODELS[model]
    data = loadDigits(flat=spec.flat)
    module = spec.build(data.trainData.shape[1:], data.classes)
    rng = numpy.random.default_rng(8)
    for var in module.getVarTable().values():
        var.data[...] = toDevice(0.2 * rng.standard_normal(var.data.shape).astype(var.data.dtype))
    for buffer in module.getBufferTable().values():
        buffer[...] = toDevice(rng.uniform(0.5, 1.5, buffer.shape).astype(buffer.dtype))
    saveCheckpoint(path, module, AdaGrad().setupOn(module, useGlobalState=True), epoch=1)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_a_checkpoint_exports(tmp_path, capsys, model):
    checkpoint = tmp_path / "checkpoint.safetensors"
    writeCheckpoint(model, checkpoint)
    status = main(["export", str(checkpoint), "--model", model, "--onnx", str(tmp_path / "net.onnx"),
                   "--torch", str(tmp_path / "torch.safetensors")])
    assert status == 0, capsys.readouterr().err

    spec = MODELS[model]
    data = loadDigits(flat=spec.flat)
    trained = spec.build(data.trainData.shape[1:], data.classes)
    loadModule(checkpoint, trained, model)
    expected = toHost(trained.evalMode()(toDevice(data.valData[:40])))
    session = onnxruntime.InferenceSession(tmp_path / "net.onnx", providers=["CPUExecutionProvider"])
    assertClose(session.run(None, {"input": data.valData[:40]})[0], expected)

    fresh = spec.build(data.trainData.shape[1:], data.classes)
    fromTorchFile = loadTorchStateDict(fresh, tmp_path / "torch.safetensors")
    numpy.testing.assert_array_equal(toHost(fromTorchFile.evalMode()(toDevice(data.valData[:40]))), expected)


def assertExportMatchesCheckpoint(folder, model):
    """The ONNX file exported to ``folder``/net.onnx gives, on 40 digits, what the ``model`` network of the
    checkpoint in ``folder`` gives."""
    data = loadDigits(flat=False)
    trained = MODELS[model].build(data.trainData.shape[1:], data.classes)
    loadModule(folder / "checkpoint.safetensors", trained, model)
    session = onnxruntime.InferenceSession(folder / "net.onnx", providers=["CPUExecutionProvider"])
    assertClose(session.run(None, {"input": data.valData[:40]})[0],
                toHost(trained.evalMode()(toDevice(data.valData[:40]))))


def test_a_run_of_the_command_names_its_model(tmp_path, capsys):
    assert main(["train", "--model", "cnn", "--epochs", "1", "--batch-size", "256", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "checkpoint.safetensors"), "--onnx", str(tmp_path / "net.onnx")]) == 0
    assert capsys.readouterr().out == f"onnx: {tmp_path / 'net.onnx'}\n"
    assertExportMatchesCheckpoint(tmp_path, "cnn")


def test_a_digits_rows_run_exports(tmp_path, capsys):
    """The LSTM of --task digits-rows reads each (1, 8, 8) digit as 8 rows: the ONNX file takes the same batch."""
    assert main(["train", "--task", "digits-rows", "--epochs", "1", "--batch-size", "256", "--out",
                 str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "checkpoint.safetensors"), "--onnx", str(tmp_path / "net.onnx")]) == 0
    assertExportMatchesCheckpoint(tmp_path, "lstm")


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_a_text_checkpoint_names_its_model(tmp_path, capsys, model):
    seed(8)
    vocabulary = "abcdefgh \n"
    module = buildModel(model, len(vocabulary), MODEL_OPTIONS[model])
    for var in module.getVarTable().values():
        var.data[...] = toDevice(0.2 * numpy.random.default_rng(8).standard_normal(var.data.shape).astype(
            var.data.dtype))
    extra = {"task": "text", "model": model, "options": MODEL_OPTIONS[model], "vocabulary": vocabulary}
    checkpoint = tmp_path / "checkpoint.safetensors"
    saveCheckpoint(checkpoint, module, AdaGrad().setupOn(module, useGlobalState=True), epoch=1, extra=extra)
    assert main(["export", str(checkpoint), "--onnx", str(tmp_path / "n.onnx")]) == 0, capsys.readouterr().err
    codes = numpy.random.default_rng(9).integers(0, len(vocabulary), size=(12, 3)).astype(numpy.int32)  # (time, batch)
    session = onnxruntime.InferenceSession(tmp_path / "n.onnx", providers=["CPUExecutionProvider"])
    assertClose(session.run(None, {"input": codes})[0], toHost(module.evalMode()(toDevice(codes))))
    assert main(["export", str(checkpoint), "--model", "mlp", "--onnx", str(tmp_path / "m.onnx")]) == 1
    assert "names its model itself" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_a_wrong_model_is_refused_before_writing(tmp_path, capsys):
    writeCheckpoint("mlp", tmp_path / "checkpoint.safetensors")
    status = main(["export", str(tmp_path / "checkpoint.safetensors"), "--model", "cnn",
                   "--onnx", str(tmp_path / "net.onnx")])
    assert status == 1
    assert "was it trained as --model cnn?" in capsys.readouterr().err
    assert not (tmp_path / "net.onnx").exists()
    assert main(["export", str(tmp_path / "checkpoint.safetensors")]) == 1
    assert "--onnx FILE.onnx and/or --torch" in capsys.readouterr().err


def test_a_layer_without_a_pytorch_layout_is_refused_before_the_onnx_file_is_written(tmp_path, capsys):
    """--onnx and --torch of a network with a PRelu: the ONNX file was written, then --torch failed (exit 1)."""
    net = Sequential(Linear(4, 3), PRelu(3))
    net.save(tmp_path / "net.safetensors")
    status = main(["export", str(tmp_path / "net.safetensors"), "--input-shape", "4", "--onnx",
                   str(tmp_path / "net.onnx"), "--torch", str(tmp_path / "net.torch.safetensors")])
    assert status == 1 and "no PyTorch state dict layout is known for it" in capsys.readouterr().err
    assert not (tmp_path / "net.onnx").exists() and not (tmp_path / "net.torch.safetensors").exists()
    assert main(["export", str(tmp_path / "net.safetensors"), "--input-shape", "4", "--onnx",
                 str(tmp_path / "net.onnx")]) == 0, capsys.readouterr().err
