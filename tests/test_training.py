"""Training reaches real outcomes: an MLP fits a fixed regression set, and the seed's example learns."""

import os
import pathlib
import re
import subprocess
import sys

import numpy

from minidl import backend
from minidl.backend import toDevice
from minidl.cost import MSE
from minidl.nn import Activation, Linear, Sequential, relu
from minidl.optim import AdaGrad

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_two_layer_mlp_fits_a_fixed_regression_set_with_adagrad():
    # y = sin(3 x0) + x1 x2 on 256 fixed points: a constant predictor has error 0.30 here.
    rng = numpy.random.default_rng(0)
    x = rng.uniform(-1, 1, (256, 3)).astype(numpy.float32)
    y = (numpy.sin(3 * x[:, :1]) + x[:, 1:2] * x[:, 2:3]).astype(numpy.float32)
    baseline = float(((y - y.mean()) ** 2).mean() / 2)

    backend.seed(0)
    net = Sequential().extend([Linear(3, 64, initscheme="he"), Activation(relu), Linear(64, 1)])
    optimizer = AdaGrad(learnRate=0.05).setupOn(net, useGlobalState=True)
    cost, data, target = MSE(), toDevice(x), toDevice(y)
    for _ in range(500):
        error, grad = cost(net(data), target)
        optimizer.zeroGradParams()
        net.backward(grad)
        optimizer.update()

    assert baseline > 0.1
    assert error < 0.005, f"error {error} after 500 steps (a constant predictor gets {baseline})"


def runExample(name):
    """Run examples/<name> as a user would, on this checkout's minidl."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, str(ROOT / "examples" / name)], capture_output=True, text=True,
                          timeout=300, env=env)


def test_the_seed_example_runs_and_its_error_falls():
    result = runExample("seed_adagrad.py")
    assert result.returncode == 0, result.stderr
    errors = [float(value) for value in re.findall(r"Iteration #\d+ error: (\S+)", result.stdout)]
    assert len(errors) == 20
    assert errors[-1] < errors[0] / 100


def test_the_skip_connection_cnn_example_learns_the_digits():
    result = runExample("cnn_skip_connection.py")
    assert result.returncode == 0, result.stderr
    assert "total parameters: 5,114" in result.stdout  # its summary
    accuracies = [float(value) for value in re.findall(r"val accuracy (\S+)%", result.stdout)]
    assert len(accuracies) == 5 and accuracies[-1] >= 95.0, result.stdout


def test_no_module_outside_the_backend_imports_cupy():
    offenders = [
        str(path.relative_to(ROOT)) for path in (ROOT / "minidl").rglob("*.py")
        if "backend" not in path.parts and re.search(r"^\s*(import cupy|from cupy)", path.read_text(), re.M)
    ]
    assert offenders == []


def test_the_lstm_example_reads_digits_row_by_row_and_learns_them():
    result = runExample("lstm_digit_rows.py")
    assert result.returncode == 0, result.stderr
    assert "total parameters: 19,594" in result.stdout  # its summary: the LSTM's 4·64·(8 + 64 + 2) and the head
    accuracies = [float(value) for value in re.findall(r"val accuracy (\S+)%", result.stdout)]
    assert len(accuracies) == 8 and accuracies[-1] >= 95.0, result.stdout
