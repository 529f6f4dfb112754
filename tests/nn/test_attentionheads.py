"""Self-attention a head at a time on the CPU (minidl.nn.attentionheads): forward and backward against float64
formulas (both dtypes, causal or not, padding with whole sequences of it, head sizes of whole vectors and tails, bands
of queries and their tails, NaN, infinities and subnormals drawn into qkv and ∂context), a NaN kept to its row, the
same bits on one thread as on two, MultiHeadAttention through it against its batched products and numerical
gradients, dropout left to the batched path, and a tape's replay."""

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.backend import toHost, xp
from minidl.nn import MultiHeadAttention, attention
from minidl.nn.attentionheads import attentionBackward, attentionForward, fused
from minidl.testing import checkGradients
from minidl.testing.strategies import withSpecials
from tests.tapereplay import assertReplaysOnNewData
from tests.threaddigest import assertSameBitsOnOneThreadAsOnTwo

pytestmark = pytest.mark.skipif(not fused(numpy.float32, False),
                                reason="attention a head at a time runs on the CPU with compiled kernels only")
TOLERANCE = {numpy.float32: {"rtol": 2e-4, "atol": 2e-5}, numpy.float64: {"rtol": 1e-11, "atol": 1e-12}}


def heads(rows, steps, batch, count):
    """(batch, heads, steps, size) views of rows (steps·batch, heads·size)."""
    return rows.reshape(steps, batch, count, -1).transpose(1, 2, 0, 3)


def visibleKeys(steps, batch, causal, padding):
    """(batch, 1, steps, steps): whether query t sees key j."""
    visible = numpy.ones((batch, 1, steps, steps), dtype=bool)
    if causal:
        visible &= numpy.tril(numpy.ones((steps, steps), dtype=bool))
    if padding is not None:
        visible &= ~padding[:, None, None, :]
    return visible


BAND = 16  # attentionheads.cpp's BAND: the queries a head's pieces take at a time


def reachedKeys(steps, causal):
    """(steps, steps): whether query t's sums take key j, as the heads' contract says: with a causal mask the keys
    before the end of t's band of BAND queries (past them its probabilities are 0, and an inf or NaN there is not
    read), else every key. Symmetric in its use: key j's sums over the queries take those whose band reaches j."""
    bandEnd = numpy.minimum((numpy.arange(steps) // BAND + 1) * BAND, steps)
    return numpy.arange(steps)[None, :] < bandEnd[:, None] if causal else numpy.ones((steps, steps), dtype=bool)


def reachedProduct(a, b, reach):
    """out[..., i, c] = Σ_j a[..., i, j] b[..., j, c] over the j that ``reach[i, j]`` allows, the others not added
    (so that 0 times an inf or NaN there adds nothing)."""
    terms = a[..., :, :, None] * b[..., None, :, :]
    return numpy.where(reach[:, :, None], terms, 0).sum(axis=-2)


def forwardOracle(qkv, padding, steps, batch, count, causal):
    """(probs (batch, heads, steps, steps), context rows (steps·batch, embed)) in float64, special values included:
    a row's maximum over its visible keys' scores leaves NaN out (its exp makes the row NaN), a hidden key's
    probability is 0 and a row that sees none is 0."""
    embed = qkv.shape[1] // 3
    q, k, v = (heads(qkv[:, part * embed:(part + 1) * embed], steps, batch, count) for part in range(3))
    visible = visibleKeys(steps, batch, causal, padding)
    with numpy.errstate(invalid="ignore", over="ignore"):
        scores = numpy.einsum("bhtd,bhjd->bhtj", q, k) / numpy.sqrt(q.shape[-1])
        top = numpy.fmax.reduce(numpy.where(visible, scores, -numpy.inf), axis=-1, keepdims=True)
        exps = numpy.where(visible, numpy.exp(scores - top), 0)
        probs = numpy.where(visible, exps / exps.sum(axis=-1, keepdims=True), 0)
        context = reachedProduct(probs, v, reachedKeys(steps, causal))
    return probs, context.transpose(2, 0, 1, 3).reshape(steps * batch, embed)


def backwardOracle(qkv, probs, dcontext, steps, batch, count, causal):
    """∂qkv rows (steps·batch, 3 embed) in float64, through the given probabilities, each sum over the keys (or
    queries) ``reachedKeys`` allows."""
    embed = qkv.shape[1] // 3
    q, k, v = (heads(qkv[:, part * embed:(part + 1) * embed], steps, batch, count) for part in range(3))
    dctx = heads(dcontext, steps, batch, count)
    reach = reachedKeys(steps, causal)
    with numpy.errstate(invalid="ignore", over="ignore"):
        dprobs = numpy.einsum("bhic,bhjc->bhij", dctx, v)
        dot = numpy.where(reach, dprobs * probs, 0).sum(axis=-1, keepdims=True)
        dscores = numpy.where(reach, probs * (dprobs - dot) / numpy.sqrt(q.shape[-1]), 0)
        parts = (reachedProduct(dscores, k, reach), reachedProduct(dscores.swapaxes(-1, -2), q, reach.T),
                 reachedProduct(probs.swapaxes(-1, -2), dctx, reach.T))
    return numpy.concatenate([part.transpose(2, 0, 1, 3).reshape(steps * batch, embed) for part in parts], axis=1)


def draw(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


@settings(max_examples=60, deadline=None)
@given(steps=st.integers(1, 40), batch=st.integers(1, 4), count=st.integers(1, 3),
       size=st.sampled_from([1, 3, 8, 16, 20, 32, 40]), dtype=st.sampled_from([numpy.float32, numpy.float64]),
       causal=st.booleans(), padded=st.booleans(), special=st.booleans(), seed=st.integers(0, 2 ** 16),
       data=st.data())
def test_heads_match_float64_formulas(steps, batch, count, size, dtype, causal, padded, special, seed, data):
    """Keys past a vector's width and queries past a band (16) of them, head sizes of whole vectors and of tails; a
    padding mask that hides every key of a sequence (its rows' probabilities 0) where it is drawn; with ``special``,
    up to three NaN, ±inf or -0.0 (or subnormals) in qkv and in ∂context, which the oracle carries where the
    heads' sums read them: NaN where it is NaN, the same infinities."""
    rng = numpy.random.default_rng(seed)
    embed = count * size
    qkv = draw(rng, (steps * batch, 3 * embed), dtype, 2.0)
    if special:
        qkv = data.draw(withSpecials(qkv))
    padding = rng.random((batch, steps)) < 0.4 if padded else None
    if padded:
        padding[0] = rng.random() < 0.5
    probs = numpy.full((batch, count, steps, steps), numpy.nan, dtype)
    context = numpy.full((steps * batch, embed), numpy.nan, dtype)
    attentionForward(qkv, padding, probs, context, count, causal)
    wantProbs, wantContext = forwardOracle(qkv.astype(numpy.float64), padding, steps, batch, count, causal)
    numpy.testing.assert_allclose(probs, wantProbs, **TOLERANCE[dtype])
    numpy.testing.assert_allclose(context, wantContext, **TOLERANCE[dtype])
    assert (probs[~numpy.broadcast_to(visibleKeys(steps, batch, causal, padding), probs.shape)] == 0).all()
    dcontext = draw(rng, context.shape, dtype)
    if special:
        dcontext = data.draw(withSpecials(dcontext))
    dqkv = numpy.full_like(qkv, numpy.nan)
    attentionBackward(qkv, probs, dcontext, dqkv, count, causal)
    want = backwardOracle(qkv.astype(numpy.float64), probs.astype(numpy.float64), dcontext.astype(numpy.float64),
                          steps, batch, count, causal)
    numpy.testing.assert_allclose(dqkv, want, **TOLERANCE[dtype])


def test_a_nan_query_poisons_its_row_only():
    """A NaN in one query makes its row of probabilities NaN where it sees keys (0 where it does not, as the softmax
    kernel gives) and its context NaN; the head's other rows, and the other heads, stay finite."""
    rng = numpy.random.default_rng(1)
    steps, batch, count, size = 20, 2, 2, 16
    qkv = draw(rng, (steps * batch, 3 * count * size), numpy.float32)
    qkv[5 * batch + 1, size + 3] = numpy.nan  # step 5 of sequence 1, head 1's query
    probs = numpy.empty((batch, count, steps, steps), numpy.float32)
    context = numpy.empty((steps * batch, count * size), numpy.float32)
    attentionForward(qkv, None, probs, context, count, True)
    assert numpy.isnan(probs[1, 1, 5, :6]).all() and (probs[1, 1, 5, 6:] == 0).all()
    assert numpy.isfinite(numpy.delete(probs[1, 1], 5, axis=0)).all() and numpy.isfinite(probs[:, 0]).all()
    assert numpy.isnan(context[5 * batch + 1, size:]).all()
    assert numpy.isfinite(numpy.delete(context, 5 * batch + 1, axis=0)).all()
    assert numpy.isfinite(context[5 * batch + 1, :size]).all()


def test_the_calls_refuse_arrays_out_of_c_order_or_of_another_dtype():
    rng = numpy.random.default_rng(2)
    qkv = draw(rng, (6, 12), numpy.float32)
    probs, context = numpy.zeros((2, 1, 3, 3), numpy.float32), numpy.zeros((6, 4), numpy.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        attentionForward(numpy.asfortranarray(qkv), None, probs, context, 1, False)
    with pytest.raises(ValueError, match="dtype"):
        attentionForward(qkv, None, probs.astype(numpy.float64), context, 1, False)
    with pytest.raises(ValueError, match="padding bool"):
        attentionForward(qkv, numpy.zeros((2, 3), numpy.int8), probs, context, 1, False)
    assert not probs.any() and not context.any()


def test_attention_runs_here_for_float32_and_float64_without_dropout():
    assert fused(numpy.float32, False) and fused(numpy.float64, False)
    assert not fused(numpy.float16, False) and not fused(numpy.float32, True)


def attentionResults(dtype, causal, padded, fusedHeads, monkeypatch, train=True):
    monkeypatch.setattr(attention, "fused", lambda *_, value=fusedHeads: value)
    module = MultiHeadAttention(40, 4, causal=causal, dtype=dtype)
    for index, var in enumerate(module.vars.values()):
        var.data[...] = draw(numpy.random.default_rng(index), var.data.shape, dtype, 0.3)
    rng = numpy.random.default_rng(3)
    x = xp.asarray(draw(rng, (19, 5, 40), dtype))
    padding = xp.asarray(rng.random((5, 19)) < 0.3) if padded else None
    if not train:
        module.evalMode()
    out = module(x if padding is None else [x, padding])
    if not train:
        return [toHost(out)]
    grad = module.backward(xp.asarray(draw(rng, out.shape, dtype)))
    grad = grad[0] if isinstance(grad, list) else grad
    return [toHost(out), toHost(grad)] + [toHost(var.grad) for var in module.vars.values()]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("causal, padded", [(True, False), (False, True), (True, True)])
def test_multihead_attention_through_the_heads_matches_its_batched_path(dtype, causal, padded, monkeypatch):
    """The output, ∂data and every parameter's gradient as the batched products and softmax kernels give them, within
    the rounding of sums in another order: relative to each array's largest value (the keys' bias has a gradient of
    0, each value a sum of terms up to 30 that cancel)."""
    unit = 1e-6 if dtype == numpy.float32 else 1e-14
    for train in (True, False):
        results = [attentionResults(dtype, causal, padded, value, monkeypatch, train) for value in (True, False)]
        for got, want in zip(*results):
            numpy.testing.assert_allclose(got, want, rtol=0, atol=20 * unit * numpy.abs(want).max())


@pytest.mark.parametrize("causal", [False, True])
def test_multihead_attention_through_the_heads_has_the_numerical_gradients(causal, monkeypatch):
    """float64, padding drawn, 3 heads of 5 features (a tail of a vector): every gradient against central differences,
    and the backward came through the heads' call."""
    calls = []
    monkeypatch.setattr(attention, "attentionBackward", lambda *args: calls.append(1) or attentionBackward(*args))
    module = MultiHeadAttention(15, 3, causal=causal, dtype=numpy.float64)
    rng = numpy.random.default_rng(8)
    padding = xp.asarray(rng.random((3, 6)) < 0.3)
    checkGradients(module, [xp.asarray(rng.standard_normal((6, 3, 15))), padding])
    assert calls


def test_dropout_on_the_probabilities_keeps_the_batched_path(monkeypatch):
    """The heads' call draws no random numbers: with dropout in training the module takes the batched products (and
    the device's random stream); in evaluation, where dropout is off, the heads' call."""
    calls = []
    monkeypatch.setattr(attention, "attentionForward", lambda *args: calls.append(1) or attentionForward(*args))
    module = MultiHeadAttention(16, 2, dropout=0.5)
    x = xp.asarray(draw(numpy.random.default_rng(5), (4, 2, 16), numpy.float32))
    module(x)
    assert not calls
    module.evalMode()
    module(x)
    assert calls == [1]


def test_a_tape_replays_the_heads_on_new_data_and_padding():
    """The padding mask an input too: a replay reads the new one."""
    rng = numpy.random.default_rng(4)
    module = MultiHeadAttention(24, 3, causal=True)
    inputs, fresh = ([draw(rng, (7, 3, 24), numpy.float32), rng.random((3, 7)) < 0.4] for _ in range(2))
    assertReplaysOnNewData(lambda x, padding: module([x, padding]), inputs, fresh, "attention_forward_heads")


DIGEST = """
import hashlib, numpy
from minidl.nn.attentionheads import attentionBackward, attentionForward
rng = numpy.random.default_rng(6)
steps, batch, count, size = 37, 5, 3, 20
draw = lambda *shape: rng.standard_normal(shape).astype(numpy.float32)
qkv, dcontext = draw(steps * batch, 3 * count * size), draw(steps * batch, count * size)
padding = rng.random((batch, steps)) < 0.3
probs = numpy.empty((batch, count, steps, steps), numpy.float32)
context, dqkv = numpy.empty((steps * batch, count * size), numpy.float32), numpy.empty_like(qkv)
attentionForward(qkv, padding, probs, context, count, True)
attentionBackward(qkv, probs, dcontext, dqkv, count, True)
print(hashlib.sha256(b"".join(a.tobytes() for a in (probs, context, dqkv))).hexdigest())
"""


def test_the_heads_give_the_same_bits_on_one_thread_as_on_two():
    """Each head is made by one thread in one order, whichever threads run the heads."""
    assertSameBitsOnOneThreadAsOnTwo(DIGEST)
