"""Sequence modules exported and run in ONNX Runtime: RNN in every mode, direction, depth and with initial
states, Transpose, SwapAxes, MatMul, SoftMax along any axis, Linear over the last axis, and an LSTM tagger."""

import numpy
import pytest

from minidl.backend import seed
from minidl.nn import RNN, Embedder, Graph, Identity, Linear, MatMul, Sequential, SoftMax, SwapAxes, Transpose
from minidl.nn import rnn as rnnModule
from tests.onnx.onnxcheck import checkExport
from tests.onnx.test_export_modules import normal

rng = numpy.random.default_rng(12)
SEQUENCE = {0: "time", 1: "batch"}


@pytest.fixture(autouse=True)
def seeded():
    seed(7)


@pytest.mark.parametrize("mode", ["lstm", "gru", "relu", "tanh"])
@pytest.mark.parametrize("direction, layers, getSequences", [("uni", 1, True), ("bi", 2, True), ("bi", 2, False),
                                                             ("uni", 2, False)])
def test_rnn(tmp_path, mode, direction, layers, getSequences):
    rnn = RNN(3, 4, layers=layers, mode=mode, direction=direction, dropout=0.3, getSequences=getSequences)
    checkExport(rnn, tmp_path / "r.onnx", normal(4, 1, 3), normal(5, 3, 3), dynamicAxes=SEQUENCE)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_rnn_with_initial_states(tmp_path, mode):
    rnn = RNN(3, 4, layers=2, mode=mode, direction="bi", getSequences=True)
    inputs = [Identity().node() for _ in range(rnn.stateCount() + 1)]
    net = Graph(inputs=inputs, outputs=rnn.node(*inputs))
    sample = [normal(5, 1, 3)] + [normal(4, 1, 4) for _ in inputs[1:]]
    run = [normal(6, 2, 3)] + [normal(4, 2, 4) for _ in inputs[1:]]
    checkExport(net, tmp_path / "s.onnx", sample, run, dynamicAxes=[SEQUENCE] + [{1: "batch"}] * len(inputs[1:]))


def test_an_lstm_whose_steps_run_fused(tmp_path, monkeypatch):
    """20 units (vectors and a tail) and 9 batch rows (groups of four and one): on the CPU its steps run in one call
    (minidl.nn.lstmsteps), and ONNX Runtime's LSTM gives the same values."""
    calls = []
    made = rnnModule.lstmForwardSteps
    monkeypatch.setattr(rnnModule, "lstmForwardSteps", lambda *args, **kwargs: calls.append(1) or made(*args,
                                                                                                          **kwargs))
    lstm = RNN(3, 20, layers=2, direction="bi", getSequences=True)
    checkExport(lstm, tmp_path / "f.onnx", normal(4, 1, 3), normal(6, 9, 3), dynamicAxes=SEQUENCE)
    assert calls or not rnnModule.fused(numpy.float32, 9, 20)


def test_shapes_of_sequences(tmp_path):
    checkExport(Transpose((1, 2, 0)), tmp_path / "t.onnx", normal(2, 3, 4), normal(5, 3, 4))
    checkExport(SwapAxes(-1, 0), tmp_path / "s.onnx", normal(2, 3, 4), normal(5, 3, 4))
    checkExport(SoftMax(axis=-1), tmp_path / "m.onnx", normal(2, 3, 4), normal(5, 3, 4))
    checkExport(Linear(4, 2), tmp_path / "l.onnx", normal(2, 3, 4), normal(5, 3, 4))
    left, right = Identity().node(), Identity().node()
    checkExport(Graph(inputs=[left, right], outputs=MatMul().node(left, right)), tmp_path / "mm.onnx",
                [normal(2, 3, 4), normal(2, 4, 5)], [normal(6, 3, 4), normal(6, 4, 5)])


def test_an_lstm_tagger(tmp_path):
    tagger = Sequential().extend([Embedder(20, 6), RNN(6, 5, mode="lstm", direction="bi", getSequences=True),
                                  Linear(10, 7)])
    words = rng.integers(0, 20, size=(8, 3))  # (time, batch)
    checkExport(tagger, tmp_path / "tagger.onnx", words[:3, :1], words, dynamicAxes=SEQUENCE)
