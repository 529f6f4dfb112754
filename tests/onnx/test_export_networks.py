"""Whole networks exported and run in ONNX Runtime: the digits MLP and CNN (trained a little, so that the
BatchNorm statistics are not their initial values), a residual block; and the export's refusals."""

import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from minidl.backend import seed, toDevice
from minidl.cost import CrossEntropy
from minidl.datasets import loadDigits
from minidl.errors import ExportError
from minidl.models import MODELS
from minidl.nn import Activation, Add, BatchNorm2D, Conv2D, Graph, Identity, Linear, Sequential, relu
from minidl.onnx import export
from minidl.optim import Adam
from minidl.train import Trainer
from tests.onnx.onnxcheck import checkExport


@pytest.fixture(autouse=True)
def seeded():
    seed(4)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_a_digits_model_after_an_epoch(tmp_path, name):
    spec = MODELS[name]
    data = loadDigits(flat=spec.flat)
    net = spec.build(data.trainData.shape[1:], data.classes)
    Trainer(net, CrossEntropy(), Adam().setupOn(net), batchsize=64).trainFromHost(data.trainData, data.trainLabels)
    checkExport(net, tmp_path / f"{name}.onnx", data.valData[:1], data.valData[:50])


def residualBlock(maps):
    """x → conv-bn-relu-conv-bn, added to x, → relu."""
    inp = Identity().node()
    branch = Sequential().extend([Conv2D(maps, maps, 3, pad=1), BatchNorm2D(maps), Activation(relu),
                                  Conv2D(maps, maps, 3, pad=1), BatchNorm2D(maps)])
    return Graph(inputs=inp, outputs=Activation(relu).node(Add().node(branch.node(inp), inp)))


def test_a_residual_block(tmp_path):
    block = residualBlock(4)
    rng = numpy.random.default_rng(1)
    for _ in range(3):  # trainMode passes move the running statistics away from (0, 1)
        block(toDevice(rng.standard_normal((4, 4, 5, 5)).astype(numpy.float32)))
    sample = rng.standard_normal((2, 4, 5, 5)).astype(numpy.float32)
    checkExport(block, tmp_path / "res.onnx", sample, rng.standard_normal((3, 4, 5, 5)).astype(numpy.float32))


class Doubling(Linear):
    """A subclass computes something of its own: it needs its own exporter."""


def test_a_module_without_exporter_is_named_before_anything_is_written(tmp_path):
    net = Sequential().extend([Linear(3, 4), Doubling(4, 2, name="head")])
    path = tmp_path / "net.onnx"
    with pytest.raises(ExportError, match=r"no ONNX exporter for Doubling 'head' \(Doubling\)"):
        minidlExport(net, path, numpy.zeros((1, 3), numpy.float32))
    assert not os.path.exists(path)
    path.write_bytes(b"previous")
    with pytest.raises(ExportError, match="Doubling"):
        minidlExport(net, path, numpy.zeros((1, 3), numpy.float32))
    assert path.read_bytes() == b"previous"


def test_bad_arguments(tmp_path):
    net = Sequential().append(Linear(3, 4))
    with pytest.raises(ExportError, match="takes a minidl Module"):
        minidlExport("net", tmp_path / "x.onnx", numpy.zeros((1, 3), numpy.float32))
    with pytest.raises(ExportError, match=r"dynamicAxes of input 0 \(shape \(1, 3\)\): expected axes in \[0, 2\)"):
        minidlExport(net, tmp_path / "x.onnx", numpy.zeros((1, 3), numpy.float32), dynamicAxes={2: "batch"})
    with pytest.raises(ExportError, match=r"opset must be an int in \[17, "):
        minidlExport(net, tmp_path / "x.onnx", numpy.zeros((1, 3), numpy.float32), opset=13)
    with pytest.raises(ExportError, match="a list of 1 such dicts"):
        minidlExport(net, tmp_path / "x.onnx", numpy.zeros((1, 3), numpy.float32), dynamicAxes=[{}, {}])
    with pytest.raises(ExportError, match="a device array, or a list of them"):
        export(net, tmp_path / "x.onnx", [toDevice(numpy.zeros((1, 3), numpy.float32)), "x"])
    with pytest.raises(ExportError, match="cannot write"):
        minidlExport(net, tmp_path / "no" / "x.onnx", numpy.zeros((1, 3), numpy.float32))
    assert os.listdir(tmp_path) == []
    model = minidlExport(net, tmp_path / "x.onnx", numpy.zeros((1, 3), numpy.float32), opset=18)
    assert [(op.domain, op.version) for op in model.opset_import] == [("", 18)]


def minidlExport(module, path, sample, **options):
    return export(module, path, toDevice(sample), **options)


def test_the_seed_network_whose_input_node_is_a_linear(tmp_path):
    inp = Linear(128, 64).node()
    out = Linear(64, 1).node(Activation(relu).node(inp))
    data = numpy.random.default_rng(2).standard_normal((19, 128)).astype(numpy.float32)
    checkExport(Graph(inputs=inp, outputs=out), tmp_path / "seed.onnx", data[:16], data[16:])


def test_without_the_onnx_package_the_error_says_what_to_install():
    code = ("import sys; sys.modules['onnx'] = None\n"
            "try:\n    import minidl.onnx\nexcept Exception as error:\n    print(type(error).__name__, error)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "ExportError minidl.onnx needs the onnx package: pip install 'minidl[onnx]'"
