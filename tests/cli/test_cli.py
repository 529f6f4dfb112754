"""The minidl command end to end: the defaults learn the digits, --plot draws, --resume continues exactly."""

import inspect
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from matplotlib.image import imread

import minidl.optim
from minidl import backend
from minidl.cli import main, train
from minidl.errors import OptimizerError
from minidl.tensorfile import readTensors, writeTensors
from tests.safetensorsreader import readSafetensors

REPOSITORY = Path(__file__).resolve().parents[2]
EPOCH_LINE = re.compile(r"epoch +(\d+)/\d+ +train error ([\d.]+) +val error ([\d.]+) +val accuracy ([\d.]+)%")


def runCommand(capsys, *args):
    status = main(["train", *map(str, args)])
    out = capsys.readouterr()
    assert status == 0, out.err
    return [EPOCH_LINE.search(line).groups() for line in out.out.splitlines() if EPOCH_LINE.search(line)]


def test_the_defaults_reach_95_percent_and_plot_the_curves(tmp_path, capsys):
    epochs = runCommand(capsys, "--out", tmp_path / "run", "--plot", tmp_path / "curves.png")
    assert [int(epoch[0]) for epoch in epochs] == list(range(1, 21))
    assert float(epochs[-1][3]) >= 95.0, f"validation accuracy {epochs[-1][3]}% after 20 epochs"
    assert float(epochs[-1][1]) < float(epochs[0][1]) / 10, "the training error falls"

    png = (tmp_path / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (1000, 400)
    picture = imread(tmp_path / "curves.png")
    assert picture.shape[:2] == (400, 1000) and picture.std() > 0.05, "the picture is not blank"

    tensors, metadata = readSafetensors(tmp_path / "run" / "checkpoint.safetensors")
    assert metadata["epoch"] == "20" and tensors["module.0.W"].shape == (64, 256)


def test_resume_continues_exactly_where_the_run_stopped(tmp_path, capsys):
    straight = runCommand(capsys, "--epochs", 4, "--out", tmp_path / "straight")
    assert len(runCommand(capsys, "--epochs", 2, "--out", tmp_path / "stopped")) == 2
    resumed = runCommand(capsys, "--epochs", 4, "--out", tmp_path / "stopped", "--resume")
    assert resumed == straight[2:]
    done, _ = readSafetensors(tmp_path / "straight" / "checkpoint.safetensors")
    again, _ = readSafetensors(tmp_path / "stopped" / "checkpoint.safetensors")
    for name in done:
        numpy.testing.assert_array_equal(again[name], done[name], err_msg=name)


@pytest.mark.parametrize("extra", ["null", "[1, 2]"])
def test_resume_counts_epochs_from_the_checkpoint_whatever_its_extra_holds(tmp_path, capsys, extra):
    """A checkpoint written by saveCheckpoint with another ``extra`` (no history) resumes after its epoch too."""
    straight = runCommand(capsys, "--epochs", 3, "--out", tmp_path / "straight")
    runCommand(capsys, "--epochs", 2, "--out", tmp_path / "stopped")
    path = tmp_path / "stopped" / "checkpoint.safetensors"
    tensors, metadata = readTensors(path, "minidl.checkpoint")
    writeTensors(path, tensors, {**metadata, "extra": extra})
    assert runCommand(capsys, "--epochs", 3, "--out", tmp_path / "stopped", "--resume") == straight[2:]


def test_another_optimizer_learns_too(tmp_path, capsys):
    epochs = runCommand(capsys, "--optimizer", "sgd", "--lr", 0.2, "--epochs", 5, "--batch-size", 32,
                        "--out", tmp_path)
    assert float(epochs[-1][3]) >= 90.0


def test_every_exported_optimizer_is_offered_with_its_learning_rate():
    notOptimizers = ("LossScaler", "Optimizer", "OptimizerError")
    exported = {name.lower() for name in minidl.optim.__all__ if name not in notOptimizers}
    assert set(train.OPTIMIZERS) == exported
    for name, cls in train.OPTIMIZERS.items():
        parameters = inspect.signature(cls).parameters
        rate = next((rate for rate in ("learnRate", "alpha") if rate in parameters), None)
        if rate is None:
            with pytest.raises(OptimizerError, match="has no learning rate"):
                train.makeOptimizer(name, 0.125)
        else:
            assert getattr(train.makeOptimizer(name, 0.125), rate) == 0.125, name


def test_an_optimizer_without_a_learning_rate_refuses_lr(monkeypatch):
    class NoRate(minidl.optim.SGD):
        def __init__(self, nodeinfo=None):
            super().__init__(learnRate=1.0, nodeinfo=nodeinfo)

    monkeypatch.setitem(train.OPTIMIZERS, "norate", NoRate)
    assert train.makeOptimizer("norate", None).learnRate == 1.0
    with pytest.raises(OptimizerError, match="NoRate has no learning rate"):
        train.makeOptimizer("norate", 0.1)


def test_errors_are_reported_without_a_traceback(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--resume"]) == 1
    assert "minidl: error: no checkpoint file at" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path), "--lr", "-1"]) == 1
    assert "learnRate must lie in" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, message", [
    ("--seed", "-1", "argument --seed: expected an integer >= 0, got -1"),
    ("--epochs", "0", "argument --epochs: expected an integer >= 1, got 0"),
    ("--batch-size", "x", "argument --batch-size: expected an integer, got 'x'"),
    ("--plot", "no/such/folder/curves.png", "argument --plot: no folder .*folder to write curves.png in"),
    ("--plot", ".", "argument --plot: . is a folder, not a file"),
])
def test_bad_flags_are_usage_errors_before_training(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as exit:
        main(["train", "--out", str(tmp_path), flag, value])
    assert exit.value.code == 2 and re.search(message, capsys.readouterr().err)
    assert not os.listdir(tmp_path), "nothing was trained or written"


def test_an_out_that_is_a_file_is_reported_without_a_traceback(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "file")]) == 1
    assert "minidl: error: --out: cannot make the folder" in capsys.readouterr().err


def test_python_dash_m_runs_the_command_on_the_other_device(tmp_path):
    """On a GPU machine --device cpu re-runs the command on NumPy; without a GPU --device gpu says why not."""
    other = "cpu" if backend.isGpu else "gpu"
    result = subprocess.run(
        [sys.executable, "-m", "minidl", "train", "--epochs", "1", "--out", str(tmp_path), "--device", other],
        capture_output=True, text=True, cwd=REPOSITORY, env={**os.environ, "MINIDL_BACKEND": ""},
    )
    if backend.isGpu:
        assert result.returncode == 0 and ", numpy" in result.stdout, result.stderr
    else:
        assert result.returncode == 1 and result.stderr.startswith("minidl: error: the GPU was asked for")


@pytest.mark.skipif(backend.name == "cupy", reason="a GPU answers here, so MINIDL_BACKEND=cupy starts")
def test_a_forced_backend_that_cannot_start_is_one_line_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "minidl", "train", "--epochs", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=REPOSITORY, env={**os.environ, "MINIDL_BACKEND": "cupy"},
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("minidl: error: the GPU was asked for (MINIDL_BACKEND=cupy or --device gpu), "
                                    "but "), result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
