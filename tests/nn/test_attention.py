"""LayerNorm, MultiHeadAttention, positional embeddings and TransformerBlock: float64 gradient checks (with
the causal and padding masks), PyTorch's numbers for the same weights, float16 LayerNorm, bad input."""

import numpy
import pytest

from minidl.backend import toDevice, toHost
from minidl.errors import ModuleError
from minidl.nn import LayerNorm, MultiHeadAttention, PositionalEmbedding, TransformerBlock
from minidl.nn.positional import sinusoids
from minidl.testing import checkGradients as checkModuleGradients
from tests.optional import importTorch

rng = numpy.random.default_rng(11)


def data(*shape):
    return toDevice(rng.standard_normal(shape))


PADDING = numpy.array([[False, False, True], [False, False, False]])


def randomized(module):
    """Biases and scales away from their starting 0 and 1, so a gradient check sees their every term."""
    for name, var in module.getVarTable().items():
        if name.endswith(("bias", "scale", "b")):
            var.set(rng.standard_normal(var.shape))
    return module


def test_layernorm_gradients_and_formula():
    norm = randomized(LayerNorm(5, dtype=numpy.float64))
    x = data(3, 2, 5)
    host = toHost(x)
    expected = (host - host.mean(-1, keepdims=True)) / numpy.sqrt(host.var(-1, keepdims=True) + 1e-5)
    numpy.testing.assert_allclose(toHost(norm(x)), expected * toHost(norm.scale) + toHost(norm.bias), rtol=1e-12)
    checkModuleGradients(norm, x)


def test_layernorm_in_float16_computes_in_float32():
    """Rows of large values: a float16 sum of squares would overflow (65504), float32 statistics do not."""
    norm = LayerNorm(256, dtype=numpy.float16)
    host = (rng.standard_normal((4, 256)) * 30 + 200).astype(numpy.float16)
    out = toHost(norm(toDevice(host)))
    wide = host.astype(numpy.float64)
    expected = (wide - wide.mean(-1, keepdims=True)) / numpy.sqrt(wide.var(-1, keepdims=True) + 1e-5)
    assert out.dtype == numpy.float16
    numpy.testing.assert_allclose(out, expected, atol=1e-2 * numpy.abs(expected).max())
    grad = toHost(norm.backward(toDevice(numpy.ones((4, 256), numpy.float16))))
    assert numpy.isfinite(grad).all() and numpy.abs(grad).max() < 1e-2  # ∂ of Σ y is 0 for a normalized row


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_attention_gradients_with_masks(causal, padded):
    attention = randomized(MultiHeadAttention(4, 2, causal=causal, dtype=numpy.float64))
    x = data(3, 2, 4)
    checkModuleGradients(attention, [x, toDevice(PADDING)] if padded else x)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_pytorch(causal):
    torch = importTorch()
    attention = randomized(MultiHeadAttention(6, 3, causal=causal, dtype=numpy.float64))
    reference = torch.nn.MultiheadAttention(6, 3, dtype=torch.float64)
    state = {name.replace("out_proj_", "out_proj."): torch.from_numpy(toHost(var.data))
             for name, var in attention.vars.items()}
    reference.load_state_dict(state)
    x = data(3, 2, 6)
    host = torch.from_numpy(toHost(x))
    mask = torch.triu(torch.ones(3, 3, dtype=torch.bool), 1) if causal else None
    expected, _ = reference(host, host, host, attn_mask=mask, key_padding_mask=torch.from_numpy(PADDING),
                            need_weights=False)
    numpy.testing.assert_allclose(toHost(attention([x, toDevice(PADDING)])), expected.detach().numpy(), rtol=1e-10,
                                  atol=1e-12)


def test_attention_with_every_key_hidden_gives_zero_probabilities_not_nan():
    attention = MultiHeadAttention(4, 2, dtype=numpy.float64)
    out = toHost(attention([data(2, 1, 4), toDevice(numpy.ones((1, 2), bool))]))
    numpy.testing.assert_allclose(out, numpy.broadcast_to(toHost(attention.out_proj_bias), out.shape))


@pytest.mark.parametrize("learned", [True, False])
def test_positional_embeddings(learned):
    positions = PositionalEmbedding(5, 4, learned=learned, dtype=numpy.float64)
    x = data(3, 2, 4)
    table = toHost(positions.W) if learned else sinusoids(5, 4)
    numpy.testing.assert_allclose(toHost(positions(x)), toHost(x) + table[:3, None], rtol=1e-12)
    checkModuleGradients(positions, x)
    assert sinusoids(3, 4)[2, 0] == pytest.approx(numpy.sin(2)) and sinusoids(3, 4)[2, 3] == pytest.approx(
        numpy.cos(2 / 100))


@pytest.mark.parametrize("learned", [True, False])
@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float16])
def test_positional_embeddings_follow_calc_mode(learned, dtype):
    positions = PositionalEmbedding(5, 4, learned=learned).calcMode(dtype)
    x = toDevice(numpy.random.default_rng(1).standard_normal((3, 2, 4)).astype(dtype))
    table = toHost(positions.W) if learned else sinusoids(5, 4).astype(dtype)
    out = positions(x)
    assert out.dtype == dtype
    numpy.testing.assert_array_equal(toHost(out), toHost(x) + table[:3, None])


@pytest.mark.parametrize("padded", [False, True])
def test_transformer_block_gradients(padded):
    block = randomized(TransformerBlock(4, 2, hidden=6, dtype=numpy.float64))
    x = data(3, 2, 4)
    checkModuleGradients(block, [x, toDevice(PADDING)] if padded else x, rtol=1e-4)


def test_transformer_block_without_updgrad_adds_the_same_gradients_and_returns_none():
    """A training step's backward (updGrad=False): every parameter's gradient as with updGrad, no ∂input."""
    block = randomized(TransformerBlock(4, 2, hidden=6, dtype=numpy.float64))
    x, grad = data(3, 2, 4), data(3, 2, 4)
    block(x)
    assert block.backward(grad).shape == x.shape
    expected = {name: toHost(var.grad).copy() for name, var in block.getVarTable().items()}
    for var in block.getVarTable().values():
        var.grad[...] = 0
    assert block.backward(grad, updGrad=False) is None and block.grad is None
    for name, var in block.getVarTable().items():
        numpy.testing.assert_array_equal(toHost(var.grad), expected[name])


def test_transformer_block_matches_pytorch_pre_norm_layer():
    torch = importTorch()
    block = randomized(TransformerBlock(4, 2, hidden=6, causal=True, dtype=numpy.float64))
    reference = torch.nn.TransformerEncoderLayer(
        4, 2, dim_feedforward=6, dropout=0.0, norm_first=True, dtype=torch.float64,
        activation=lambda x: torch.nn.functional.gelu(x, approximate="tanh"))
    table = {name: torch.from_numpy(toHost(var.data)) for name, var in block.getVarTable().items()}
    reference.load_state_dict({
        "self_attn.in_proj_weight": table["attention.in_proj_weight"], "self_attn.in_proj_bias": table[
            "attention.in_proj_bias"], "self_attn.out_proj.weight": table["attention.out_proj_weight"],
        "self_attn.out_proj.bias": table["attention.out_proj_bias"], "linear1.weight": table["fc1.W"].T,
        "linear1.bias": table["fc1.b"], "linear2.weight": table["fc2.W"].T, "linear2.bias": table["fc2.b"],
        "norm1.weight": table["norm1.scale"], "norm1.bias": table["norm1.bias"],
        "norm2.weight": table["norm2.scale"], "norm2.bias": table["norm2.bias"]})
    x = data(3, 2, 4)
    mask = torch.triu(torch.ones(3, 3, dtype=torch.bool), 1)
    expected = reference(torch.from_numpy(toHost(x)), src_mask=mask, is_causal=True)
    numpy.testing.assert_allclose(toHost(block(x)), expected.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make, call", [
    (lambda: LayerNorm(0), None),
    (lambda: LayerNorm(4, epsilon=numpy.inf), None),  # accepted, it made every output the bias
    (lambda: LayerNorm(4, epsilon="1e-5"), None),  # a TypeError, not a ModuleError
    (lambda: LayerNorm(4), lambda m: m(toDevice(numpy.zeros((2, 5), numpy.float32)))),
    (lambda: MultiHeadAttention(6, 4), None),
    (lambda: MultiHeadAttention(4, 2, dropout=None), None),  # a TypeError, not a ModuleError
    (lambda: TransformerBlock(4, 2, dropout="0.1"), None),
    (lambda: MultiHeadAttention(4, 2), lambda m: m(toDevice(numpy.zeros((3, 2, 4), numpy.float64)))),
    (lambda: MultiHeadAttention(4, 2),
     lambda m: m([toDevice(numpy.zeros((3, 2, 4), numpy.float32)), toDevice(numpy.zeros((3, 2), bool))])),
    (lambda: MultiHeadAttention(4, 2),
     lambda m: m([toDevice(numpy.zeros((3, 2, 4), numpy.float32)), toDevice(numpy.zeros((2, 3), numpy.int32))])),
    (lambda: PositionalEmbedding(2, 4), lambda m: m(toDevice(numpy.zeros((3, 1, 4), numpy.float32)))),
])
def test_bad_arguments_and_inputs_are_refused(make, call):
    with pytest.raises(ModuleError):
        module = make()
        call(module)
