"""CapturedForward: a recorded eval forward pass replays with the bits of an ordinary one, skips the modules' Python,
starts again when shapes or Variables change, and runs ordinarily (said once) where a recording is wrong."""

import logging

import numpy
import pytest

from minidl import backend, nn
from minidl.backend import xp
from minidl.models import MODELS
from minidl.nn import activationfunctions
from minidl.nn.module import Module
from minidl.testing import checkGradients
from minidl.train import Calculator
from minidl.variable import Variable

NETWORKS = [("mlp", (64,)), ("cnn", (1, 8, 8)), ("lenet", (1, 28, 28)), ("resnet18", (3, 32, 32)), ("lstm", (8, 16))]
LAYERS = [lambda: nn.Upsample2D(2), lambda: nn.MaxPool2D(2), lambda: nn.AvgPool2D(2), lambda: nn.Pad2D(1),
          lambda: nn.GroupNorm(2, 8), lambda: nn.InstanceNorm2D(8), lambda: nn.SoftMax(), lambda: nn.LCN(3),
          lambda: nn.CrossMapLRN(), lambda: nn.Dropout(0.5), lambda: nn.Conv2D(8, 4, 3, groups=2),
          lambda: nn.Conv2D(8, 8, 3, groups=8), lambda: nn.Deconv2D(8, 4, 2, stride=2), lambda: nn.GlobalAvgPool2D()]


def batch(seed, shape):
    return backend.toDevice(numpy.random.default_rng(seed).standard_normal(shape).astype(numpy.float32))


def same(first, second):
    return backend.toHost(first).tobytes() == backend.toHost(second).tobytes()


def replays(forward, module, shape, seeds=(1, 2, 3, 4)):
    """Call the captured forward on several batches, each against the ordinary forward pass."""
    for seed in seeds:
        data = batch(seed, shape)
        assert same(numpy.array(backend.toHost(forward(data))), module(data)), seed


@pytest.mark.parametrize("name, sample", NETWORKS)
def test_a_network_replays_the_bits_of_its_forward_pass(name, sample):
    backend.seed(0)
    net = MODELS[name].build(sample, 10).evalMode()
    forward = nn.CapturedForward(net)
    replays(forward, net, (4, *sample))
    assert forward.tapes[((4, *sample), numpy.dtype(numpy.float32))] is not None


@pytest.mark.parametrize("make", LAYERS)
def test_a_layer_replays_the_bits_of_its_forward_pass(make):
    layer = make().evalMode()
    forward = nn.CapturedForward(layer)
    replays(forward, layer, (2, 8, 16, 16))
    assert forward.tapes[((2, 8, 16, 16), numpy.dtype(numpy.float32))] is not None


def test_a_replay_runs_no_module_code(monkeypatch):
    net = MODELS["mlp"].build((64,), 10).evalMode()
    forward = nn.CapturedForward(net)
    forward(batch(1, (4, 64)))
    forward(batch(2, (4, 64)))  # recorded
    monkeypatch.setattr(Module, "__call__", lambda *args: pytest.fail("a module ran"))
    expected = backend.toHost(forward(batch(3, (4, 64)))).copy()
    monkeypatch.undo()
    assert same(expected, net(batch(3, (4, 64))))


def test_new_shapes_train_mode_and_new_variables_are_followed():
    backend.seed(0)
    net = MODELS["cnn"].build((1, 8, 8), 10).evalMode()
    forward = nn.CapturedForward(net)
    replays(forward, net, (4, 1, 8, 8))
    replays(forward, net, (3, 1, 8, 8))  # the last partial batch of a pass
    replays(forward, net, (4, 1, 8, 8), seeds=(5, 6))
    first = net.getVarTable()["0.W"]
    first.data *= 2  # in place: the recording reads it
    replays(forward, net, (4, 1, 8, 8), seeds=(7,))
    net.setVar("0.W", Variable(first.data * -1))  # rebound: every shape starts again
    replays(forward, net, (4, 1, 8, 8), seeds=(8, 9, 10))
    net.trainMode()  # a train pass updates BatchNorm's running statistics once per call, as an ordinary one
    before = backend.toHost(net.getBufferTable()["1.mean"]).copy()
    forward(batch(11, (4, 1, 8, 8)))
    after = backend.toHost(net.getBufferTable()["1.mean"]).copy()
    net.getBufferTable()["1.mean"][...] = backend.toDevice(before)
    net(batch(11, (4, 1, 8, 8)))
    assert same(after, net.getBufferTable()["1.mean"])


class StaleCopy(Module):
    """Copies its input through a plain array no hook sees: a recording of it would replay a stale value."""

    def __init__(self):
        super().__init__(None)
        self.buffer = None

    def updData(self, data):
        self.buffer = numpy.empty(data.shape, data.dtype)
        numpy.copyto(self.buffer, numpy.asarray(data).view(numpy.ndarray))
        return self.buffer * 2


class HostRead(Module):
    def updData(self, data):
        return data * float(data.max())


# StaleCopy's NumPy copy cannot take a device array; a device's capture refuses the host read (a sync)
REFUSED = ([(HostRead(), "cannot be captured as a CUDA graph (the current stream is capturing")] if backend.isGpu else
           [(StaleCopy(), "did not give the bits"), (HostRead(), "read an array's value")])


@pytest.mark.parametrize("module, why", REFUSED)
def test_a_forward_that_cannot_be_replayed_runs_ordinarily_said_once(module, why, caplog):
    forward = nn.CapturedForward(module.evalMode())
    with caplog.at_level(logging.WARNING, logger="minidl"):
        for seed in range(4):
            data = batch(seed, (3, 5))
            assert same(forward(data), module(data))
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "runs uncaptured" in warnings[0] and why in warnings[0]
    assert forward.tapes[((3, 5), numpy.dtype(numpy.float32))] is None


def test_calculator_captures_unless_told_not_to():
    backend.seed(0)
    net = MODELS["cnn"].build((1, 8, 8), 10)
    data = numpy.random.default_rng(0).standard_normal((70, 1, 8, 8)).astype(numpy.float32)
    captured = Calculator(net, batchsize=16, verbose=False).calcFromHost(data)
    ordinary = Calculator(net, batchsize=16, verbose=False, capture=False).calcFromHost(data)
    assert captured.tobytes() == ordinary.tobytes()
    assert len({row.tobytes() for row in captured}) == 70  # each batch its own output, not the last one's
    with pytest.raises(Exception, match="capture must be True or False, got 1"):
        Calculator(net, capture=1)
    assert xp.matmul is xp.module.matmul


def float64Network():
    return nn.Sequential(nn.Conv2D(2, 3, 3, pad=1, dtype=numpy.float64),
                         nn.Activation(activationfunctions.tanh), nn.Flatten(),
                         nn.Linear(3 * 5 * 4, 2, dtype=numpy.float64)).evalMode()


def test_a_float64_network_replays_its_bits_and_keeps_exact_gradients():
    """Replays in float64 give the ordinary pass's bits, and leave the network's own passes untouched: its float64
    gradients still match central differences afterwards (a replay writes only the tape's arrays)."""
    net = float64Network()
    forward = nn.CapturedForward(net)
    for seed in (1, 2, 3, 4):
        data = backend.toDevice(numpy.random.default_rng(seed).standard_normal((3, 2, 5, 4)))
        assert same(numpy.array(backend.toHost(forward(data))), net(data)), seed
    assert forward.tapes[((3, 2, 5, 4), numpy.dtype(numpy.float64))] is not None
    checkGradients(net, backend.toDevice(numpy.random.default_rng(5).standard_normal((3, 2, 5, 4))))


def test_a_replayed_network_exports_to_onnx_with_the_replayed_outputs(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="the ONNX test needs onnxruntime (the test extra)")
    from minidl.onnx import export

    backend.seed(0)
    net = MODELS["cnn"].build((1, 8, 8), 10).evalMode()
    forward = nn.CapturedForward(net)
    samples = [numpy.random.default_rng(seed).standard_normal((4, 1, 8, 8)).astype(numpy.float32) for seed in (1, 2, 3)]
    replayed = [numpy.array(backend.toHost(forward(backend.toDevice(sample)))) for sample in samples]
    export(net, tmp_path / "net.onnx", backend.toDevice(samples[0]), dynamicAxes={0: "batch"})
    session = onnxruntime.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    for sample, ours in zip(samples, replayed):
        (theirs,) = session.run(None, {session.get_inputs()[0].name: sample})
        numpy.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5 * float(numpy.abs(ours).max()))
