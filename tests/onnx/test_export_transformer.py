"""The transformer's modules exported and run in ONNX Runtime at other lengths and batch sizes than the
sample's: LayerNorm, PositionalEmbedding, MultiHeadAttention (causal, padded), TransformerBlock."""

import numpy
import pytest

from minidl.backend import seed
from minidl.nn import (
    Add,
    Embedder,
    Graph,
    Identity,
    LayerNorm,
    Linear,
    MultiHeadAttention,
    PositionalEmbedding,
    Sequential,
    TransformerBlock,
)
from minidl.nn import attention as attentionModule
from minidl.nn.attentionheads import fused
from tests.onnx.onnxcheck import checkExport
from tests.onnx.test_export_modules import normal, randomise

SEQUENCE = {0: "time", 1: "batch"}
rng = numpy.random.default_rng(13)


@pytest.fixture(autouse=True)
def seeded():
    seed(9)


def test_layernorm_and_positions(tmp_path):
    checkExport(randomise(LayerNorm(6, epsilon=1e-3)), tmp_path / "l.onnx", normal(2, 1, 6), normal(5, 3, 6),
                dynamicAxes=SEQUENCE)
    for learned in (True, False):
        checkExport(PositionalEmbedding(9, 4, learned=learned), tmp_path / "p.onnx", normal(2, 1, 4),
                    normal(7, 3, 4), dynamicAxes=SEQUENCE)


@pytest.mark.parametrize("causal", [False, True])
def test_attention(tmp_path, causal):
    attention = randomise(MultiHeadAttention(8, 2, dropout=0.5, causal=causal))
    checkExport(attention, tmp_path / "a.onnx", normal(3, 1, 8), normal(6, 2, 8), dynamicAxes=SEQUENCE)


def test_attention_with_padding(tmp_path):
    attention = randomise(MultiHeadAttention(8, 4, causal=True))
    inputs = [Identity().node(), Identity().node()]
    net = Graph(inputs=inputs, outputs=attention.node(*inputs))
    padding = numpy.zeros((2, 5), dtype=bool)
    padding[1, 3:] = True  # the second sequence is 3 long
    checkExport(net, tmp_path / "ap.onnx", [normal(2, 1, 8), padding[:1, :2]], [normal(5, 2, 8), padding],
                dynamicAxes=[SEQUENCE, {0: "batch", 1: "time"}])


def test_a_graph_whose_one_input_node_takes_data_and_padding(tmp_path):
    """A Graph of one input node hands that node the whole input, [data, padding] for attention or a
    TransformerBlock (as forward does); an Add there sums the graph's two inputs."""
    padding = numpy.zeros((2, 5), dtype=bool)
    padding[1, 3:] = True
    for first in (randomise(MultiHeadAttention(8, 2, causal=False)), randomise(TransformerBlock(8, 2))):
        node = first.node()
        net = Graph(inputs=node, outputs=randomise(Linear(8, 3)).node(node))
        checkExport(net, tmp_path / "gp.onnx", [normal(2, 1, 8), padding[:1, :2]], [normal(5, 2, 8), padding],
                    dynamicAxes=[SEQUENCE, {0: "batch", 1: "time"}])
    node = Add().node()
    checkExport(Graph(inputs=node, outputs=randomise(Linear(8, 3)).node(node)), tmp_path / "ga.onnx",
                [normal(1, 8), normal(1, 8)], [normal(4, 8), normal(4, 8)])


def test_attention_whose_heads_run_in_one_call(tmp_path, monkeypatch):
    """20 steps (a band of 16 queries and a tail), 3 heads of 5 features (a vector's tail), causal, with padding: on
    the CPU the heads run in one call (minidl.nn.attentionheads), and ONNX Runtime gives the same values."""
    calls = []
    made = attentionModule.attentionForward
    monkeypatch.setattr(attentionModule, "attentionForward", lambda *args: calls.append(1) or made(*args))
    attention = randomise(MultiHeadAttention(15, 3, causal=True))
    inputs = [Identity().node(), Identity().node()]
    net = Graph(inputs=inputs, outputs=attention.node(*inputs))
    padding = numpy.zeros((3, 20), dtype=bool)
    padding[1, 12:] = True
    checkExport(net, tmp_path / "ah.onnx", [normal(4, 1, 15), padding[:1, :4]], [normal(20, 3, 15), padding],
                dynamicAxes=[SEQUENCE, {0: "batch", 1: "time"}])
    assert calls or not fused(numpy.float32, False)


def test_a_transformer_block_in_a_small_language_model(tmp_path):
    model = Sequential(Embedder(30, 8), PositionalEmbedding(16, 8), TransformerBlock(8, 2, dropout=0.1),
                       TransformerBlock(8, 2, hidden=12, causal=False), LayerNorm(8), Linear(8, 30))
    randomise(model)
    tokens = rng.integers(0, 30, size=(7, 3))
    checkExport(model, tmp_path / "lm.onnx", tokens[:2, :1], tokens, dynamicAxes=SEQUENCE)

