"""``minidl profile``: one training step of every model the command trains, counted on the simulated device, with
the figures printed and written as JSON, and the prediction labelled as a model."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from minidl import backend
from minidl.cli import buildParser

# The command runs on the simulated device whatever the suite's backend: the NumPy run of the suite runs it once.
pytestmark = pytest.mark.skipif(backend.name == "simulated", reason="minidl profile runs on the simulated device "
                                "whichever backend the suite runs on: the NumPy run of the suite runs these")

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"launches", "syncs", "hostToDevice", "deviceToHost", "bytes", "predictedSeconds", "pageableCopies",
        "hostRandomDraws", "memoryHighWater", "products", "flops"}


def profile(tmp_path, *arguments):
    out = tmp_path / "profile.json"
    result = subprocess.run([sys.executable, "-m", "minidl", "profile", *arguments, "--json", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads(out.read_text())


@pytest.mark.parametrize("arguments", [
    ("--model", "mlp"), ("--model", "cnn"), ("--model", "lenet", "--input", "1x28x28"),
    ("--model", "resnet18", "--input", "3x8x8"), ("--model", "resnet34", "--input", "3x8x8"),
    ("--model", "lstm", "--input", "8x8"), ("--task", "text", "--model", "lstm"),
    ("--task", "text", "--model", "transformer"),
], ids=lambda arguments: "-".join(arguments[1::2]))
def test_every_model_is_profiled(tmp_path, arguments):
    printed, figures = profile(tmp_path, *arguments, "--batch-size", "2")
    assert KEYS <= set(figures)
    assert figures["launches"] > figures["products"] > 0 and figures["flops"] > 0 and figures["bytes"] > 0
    assert 0 < figures["predictedSeconds"] < 1 and figures["memoryHighWater"] > 0
    assert "on the simulated device" in printed and "a MODEL, not a measurement" in printed
    assert f"launches {figures['launches']} " in printed and "heaviest kernels" in printed
    assert printed.count("  sync: ") == figures["syncs"]
    replay = figures["replay"]  # the step as training takes it: one CUDA graph of the step's kernels
    assert replay["graphLaunches"] == 1 and replay["graphNodes"] == figures["launches"] and replay["syncs"] == 0
    perLaunch = figures["model"]["hostSecondsPerLaunch"] + figures["model"]["cupyLaunchSeconds"]
    assert figures["model"]["hostSeconds"] == pytest.approx(figures["launches"] * perLaunch)
    # the graph's kernels cost the host nothing: one graph launch and the three launches around it
    assert replay["hostLaunches"] == 3
    assert replay["model"]["hostSeconds"] == pytest.approx(replay["model"]["graphLaunchSeconds"] + 3 * perLaunch)
    assert f"one graph launch of {figures['launches']} kernels" in printed


@pytest.mark.parametrize("arguments", [("--model", "mlp"), ("--model", "lenet", "--input", "1x28x28")],
                         ids=["mlp", "lenet"])
def test_a_replayed_steps_predicted_time_drops_by_the_host_time_removed(tmp_path, arguments):
    """The MLP and LeNet steps (batch 32), host-bound uncaptured (CuPy's own launches alone, 6 µs each in the model,
    outlast the device's work, whatever minidl's Python measures on this machine): replayed as a CUDA graph, the
    model predicts the device's time and its one small copy (host time below it), which is the uncaptured step's
    device time and its three more launches: the step falls by nearly all its host time beyond the device's."""
    _, figures = profile(tmp_path, *arguments)
    ordinary, replay = figures["model"], figures["replay"]["model"]
    assert ordinary["seconds"] == pytest.approx(ordinary["hostSeconds"])
    assert figures["launches"] * ordinary["cupyLaunchSeconds"] > ordinary["deviceSeconds"]
    assert replay["seconds"] == pytest.approx(replay["deviceSeconds"] + replay["copySeconds"])  # the live values'
    assert replay["hostSeconds"] < replay["seconds"]
    assert replay["deviceSeconds"] < 1.1 * ordinary["deviceSeconds"]
    hostBeyondDevice = ordinary["hostSeconds"] - ordinary["deviceSeconds"]
    assert ordinary["seconds"] - replay["seconds"] > 0.9 * hostBeyondDevice


def test_a_bigger_batch_moves_more_bytes_in_as_many_launches(tmp_path):
    small = profile(tmp_path, "--model", "cnn", "--batch-size", "2")[1]
    large = profile(tmp_path, "--model", "cnn", "--batch-size", "64")[1]
    assert large["launches"] == small["launches"] and large["bytes"] > small["bytes"]
    assert large["flops"] > 16 * small["flops"]


@pytest.mark.parametrize("arguments, message", [
    (["--model", "transformer"], "--task classify profiles"),
    (["--task", "text", "--model", "cnn"], "--task text profiles a language model"),
    (["--task", "text", "--model", "lstm", "--input", "3x8x8"], "--input is for --task classify"),
    (["--model", "cnn", "--input", "3xbig"], "--input takes sides joined by x"),
    (["--model", "cnn", "--batch-size", "0"], "--batch-size must be at least 1"),
    # checked before the step is profiled, not a traceback when the figures are written at the end
    (["--model", "mlp", "--json", "/nonexistent-folder/profile.json"], "no folder /nonexistent-folder"),
    (["--model", "mlp", "--json", "/"], "/ is a folder, not a file"),
])
def test_bad_options_are_one_line_errors(arguments, message):
    result = subprocess.run([sys.executable, "-m", "minidl", "profile", *arguments], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr


def test_the_command_parses_its_options():
    args = buildParser().parse_args(["profile", "--model", "resnet18", "--input", "3x32x32", "--gpu", "h200"])
    assert args.input == (3, 32, 32) and args.gpu == "h200" and args.batch_size == 32
