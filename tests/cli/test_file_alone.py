"""``minidl export`` and ``minidl sample`` from the file alone: the network comes from the architecture the file
carries, so a network the command has no builder for (a hand-made Graph, a module file) exports, and a text
checkpoint samples without its extra entry naming a model."""

import numpy
import pytest

from minidl.backend import seed, toDevice, toHost
from minidl.cli import main
from minidl.models import lstmLM
from minidl.nn import Activation, Add, Graph, GroupLinear, Identity, Linear, Reshape, tanh
from minidl.optim import SGD
from minidl.train import saveCheckpoint
from tests.onnx.onnxcheck import assertClose

onnxruntime = pytest.importorskip("onnxruntime", reason="the ONNX tests need onnxruntime (the test extra)")


def handMade():
    """A Graph no builder makes: a shared Linear used twice, a GroupLinear."""
    seed(11)
    shared = Linear(6, 6)
    inp = Identity().node()
    twice = shared.node(Activation(tanh).node(shared.node(inp)))
    grouped = GroupLinear(2, 3, 4).node(Reshape((-1, 2, 3)).node(Add().node(inp, twice)))
    return Graph(inputs=inp, outputs=Reshape((-1, 8)).node(grouped))


@pytest.mark.parametrize("kind", ["module", "checkpoint"])
def test_a_hand_made_network_exports_from_its_file(tmp_path, capsys, kind):
    net = handMade()
    path = tmp_path / "net.safetensors"
    if kind == "module":
        net.save(path)
    else:
        saveCheckpoint(path, net, SGD().setupOn(net), epoch=0)
    out = tmp_path / "net.onnx"
    assert main(["export", str(path), "--onnx", str(out)]) == 1
    assert "give --input-shape" in capsys.readouterr().err and not out.exists()
    assert main(["export", str(path), "--input-shape", "6", "--onnx", str(out)]) == 0, capsys.readouterr().err
    data = numpy.random.default_rng(0).standard_normal((5, 6)).astype(numpy.float32)
    session = onnxruntime.InferenceSession(out, providers=["CPUExecutionProvider"])
    assertClose(session.run(None, {"input": data})[0], toHost(net.evalMode()(toDevice(data))))


def test_a_text_checkpoint_samples_from_its_architecture(tmp_path, capsys):
    """Options the command never uses (embed 5, hidden 7, two layers), and an extra entry without model or
    options: only the architecture in the file can rebuild the network."""
    seed(12)
    vocabulary = "ab \n"
    net = lstmLM(len(vocabulary), embed=5, hidden=7, layers=2)
    path = tmp_path / "lm.safetensors"
    saveCheckpoint(path, net, SGD().setupOn(net), epoch=1, extra={"task": "text", "vocabulary": vocabulary})
    assert main(["sample", "--checkpoint", str(path), "--length", "20", "--prompt", "ab"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("ab") and len(text) == len("ab") + 20 + 1 and set(text[:-1]) <= set(vocabulary)
