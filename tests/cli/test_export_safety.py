"""``minidl export`` never writes over its own input or another checkpoint without --overwrite, and exports runs
of every --dtype."""

import numpy
import pytest
import safetensors.numpy

from minidl.backend import toDevice, toHost
from minidl.cli import main
from minidl.cli.export import loadModule
from minidl.datasets import loadDigits
from minidl.models import MODELS
from tests.cli.test_export_command import writeCheckpoint

onnxruntime = pytest.importorskip("onnxruntime", reason="the ONNX tests need onnxruntime (the test extra)")


@pytest.mark.parametrize("flag", ["--onnx", "--torch"])
def test_export_refuses_to_write_over_its_own_checkpoint(tmp_path, capsys, flag):
    checkpoint = tmp_path / "checkpoint.safetensors"
    writeCheckpoint("mlp", checkpoint)
    before = checkpoint.read_bytes()
    assert main(["export", str(checkpoint), flag, str(checkpoint)]) == 1
    assert "is the checkpoint being exported" in capsys.readouterr().err
    assert checkpoint.read_bytes() == before
    assert main(["train", "--resume", "--epochs", "2", "--out", str(tmp_path)]) == 0, capsys.readouterr().err


def test_export_refuses_to_write_over_another_checkpoint_unless_told(tmp_path, capsys):
    checkpoint, other = tmp_path / "checkpoint.safetensors", tmp_path / "other.safetensors"
    writeCheckpoint("mlp", checkpoint)
    writeCheckpoint("cnn", other)
    before = other.read_bytes()
    assert main(["export", str(checkpoint), "--torch", str(other)]) == 1
    assert "holds a minidl checkpoint" in capsys.readouterr().err and other.read_bytes() == before
    assert main(["export", str(checkpoint), "--torch", str(other), "--overwrite"]) == 0
    assert other.read_bytes() != before
    assert main(["export", str(checkpoint), "--torch", str(tmp_path / "t"), "--onnx", str(tmp_path / "t")]) == 1
    assert "the same file" in capsys.readouterr().err and not (tmp_path / "t").exists()


@pytest.mark.parametrize("dtype, tolerance", [("float16", 2e-2), ("float64", 1e-12)])
def test_runs_of_every_dtype_export(tmp_path, capsys, dtype, tolerance):
    assert main(["train", "--epochs", "1", "--dtype", dtype, "--out", str(tmp_path)]) == 0
    checkpoint = tmp_path / "checkpoint.safetensors"
    assert main(["export", str(checkpoint), "--onnx", str(tmp_path / "n.onnx"), "--torch",
                 str(tmp_path / "t.safetensors")]) == 0, capsys.readouterr().err
    data = loadDigits(flat=True)
    trained = MODELS["mlp"].build(data.trainData.shape[1:], data.classes).calcMode(dtype)
    loadModule(checkpoint, trained, "mlp")
    samples = data.valData[:40].astype(dtype)
    expected = toHost(trained.evalMode()(toDevice(samples)))
    session = onnxruntime.InferenceSession(tmp_path / "n.onnx", providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": samples})[0]
    assert got.dtype == numpy.dtype(dtype)
    numpy.testing.assert_allclose(got.astype(numpy.float64), expected.astype(numpy.float64), rtol=tolerance,
                                  atol=tolerance)


@pytest.mark.parametrize("flag", ["--onnx", "--torch"])
def test_export_writes_through_a_link_to_a_file_not_yet_there(tmp_path, capsys, flag):
    """An output that is a symbolic link to a file not yet written (a dangling link) is written through the
    link, as every file minidl writes is (minidl.atomicfile); the check against the checkpoint crashed on it."""
    checkpoint, target, link = tmp_path / "checkpoint.safetensors", tmp_path / "target", tmp_path / "link"
    writeCheckpoint("mlp", checkpoint)
    link.symlink_to(target)
    assert main(["export", str(checkpoint), flag, str(link), "--input-shape", "64"]) == 0, capsys.readouterr().err
    assert link.is_symlink() and target.is_file()
    if flag == "--onnx":
        session = onnxruntime.InferenceSession(target, providers=["CPUExecutionProvider"])
        assert session.run(None, {"input": numpy.zeros((3, 64), numpy.float32)})[0].shape == (3, 10)
    else:
        assert set(safetensors.numpy.load_file(target)) == {f"{layer}.{name}" for layer in (0, 2, 4)
                                                         for name in ("weight", "bias")}
