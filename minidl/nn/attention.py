"""MultiHeadAttention: scaled dot-product self-attention with several heads (Vaswani et al. 2017), on
sequences of shape (time, batch, embed).

    q, k, v = x Wqᵀ + bq, x Wkᵀ + bk, x Wvᵀ + bv       split into ``heads`` heads of embed/heads features
    P = softmax(q kᵀ / sqrt(d) + mask) per head,        out = concat_heads(P v) Woᵀ + bo

The mask hides key j from query t where ``causal`` and j > t, and where the padding mask marks key j of a
sequence as padding. The softmax is one fused, numerically stable kernel per row of scores (the row's max
over its visible keys is subtracted before exp); a row with no visible key gets probabilities 0. Its
backward is one fused kernel too: ∂s = scale · P (∂P - Σ_j ∂P P), the rows' Σ_j ∂P P a Reduction before it.
On the CPU, without dropout, the heads' scores, softmax and context are one call instead, and their backward one
more (``minidl.nn.attentionheads``).

Weights have PyTorch's ``nn.MultiheadAttention`` names and shapes: ``in_proj_weight`` (3·embed, embed),
``in_proj_bias``, ``out_proj_weight`` (embed, embed), ``out_proj_bias``.
"""

import math

import numpy

from minidl.backend import Elementwise, Reduction, deviceDraw, isGpu, simdSum, toDevice, valuesPerElement, xp
from minidl.backend.products import columnSums, cpuLaidOut, matmul
from minidl.errors import ModuleError
from minidl.nn.attentionheads import attentionBackward, attentionForward, fused
from minidl.nn.dropout import dropout
from minidl.nn.linear import addBias, initWeights
from minidl.nn.module import Module, checkArray, describe
from minidl.validation import checkNumber
from minidl.variable import Variable


def hiddenKeys(rows, heads, queries, keys, causal, padding):
    """Which (row, key) pairs the masks hide, for ``rows`` = batch·heads·queries rows of scores."""
    hidden = numpy.zeros((rows, keys), dtype=bool)
    if causal:
        hidden |= numpy.tile(numpy.triu(numpy.ones((queries, keys), dtype=bool), 1), (rows // queries, 1))
    if padding is not None:
        perBatch = padding.reshape(-1, 1, keys).astype(bool)
        hidden |= numpy.broadcast_to(perBatch, (perBatch.shape[0], heads * queries, keys)).reshape(rows, keys)
    return hidden


def _maskedSoftmaxNumpy(scores, padding, heads, queries, keys, causal, usePadding, scale, probs, logsum):
    rows = scores.reshape(-1, keys).astype(logsum.dtype) * scale
    visible = ~hiddenKeys(rows.shape[0], heads, queries, keys, causal, padding if usePadding else None)
    anyVisible = visible.any(axis=1)
    with numpy.errstate(invalid="ignore", divide="ignore"):
        top = numpy.max(numpy.where(visible, rows, -numpy.inf), axis=1)
        exps = numpy.where(visible, numpy.exp(rows - top[:, None]), 0)
        sums = exps.sum(axis=1)
        inverse = numpy.where(anyVisible, 1 / sums, 0)
        probs.reshape(-1, keys)[...] = numpy.where(visible, exps * inverse[:, None], 0)
        logsum.reshape(-1)[...] = numpy.where(anyVisible, top + numpy.log(sums), -numpy.inf)


VISIBLE = "!((causal && j > q) || (usePadding && padding[padAt + j]))"

# Each row's three loops over its keys are branch-free, so the host compiler vectorizes them (its exp from glibc's
# vector library, the maximum and the sum as OpenMP simd reductions, the sum in interleaved partial sums; NVRTC
# ignores the pragmas): a hidden key counts as -inf in the maximum and 0 in the sum. 32x4 heads of 64x64 causal
# scores took 2.0 ms with a branch per key and exp in scalar calls.
maskedSoftmaxKer = Elementwise(
    "minidl_attention_softmax",
    "raw T scores, raw bool padding, int32 heads, int32 queries, int32 keys, int32 causal, int32 usePadding, "
    "S scale",
    "raw T probs, S logsum",
    "const ptrdiff_t at = i * keys, padAt = i / ((ptrdiff_t)queries * heads) * keys; const int q = i % queries; "
    "const S hidden = log((S)0); S top = hidden; int seen = 0, unordered = 0; "  # -inf: NVRTC has no INFINITY
    "\n#pragma omp simd reduction(max:top) reduction(|:seen, unordered)\n"
    f"for (int j = 0; j < keys; ++j) {{ const bool visible = {VISIBLE}; "
    "  const S s = visible ? (S)((S)scores[at + j] * scale) : hidden; "
    "  top = s > top ? s : top; seen |= visible; unordered |= s != s; } "
    "if (unordered) top = (S)nan(\"\"); "  # a NaN score makes the row NaN, as in NumPy's max
    "S sum = 0; "
    + simdSum("sum") +
    f"for (int j = 0; j < keys; ++j) sum += ({VISIBLE}) ? (S)exp((S)scores[at + j] * scale - top) : (S)0; "
    "const S inverse = seen ? (S)((S)1 / sum) : (S)0; "
    "for (int j = 0; j < keys; ++j) "
    f"  probs[at + j] = ({VISIBLE}) ? (T)(exp((S)scores[at + j] * scale - top) * inverse) : (T)0; "
    "logsum = seen ? (S)(top + log(sum)) : hidden",
    _maskedSoftmaxNumpy,
    grain="3 * keys",
)


def _gradDotNumpy(dprobs, probs, dot, axis, keepdims):
    dot[...] = (dprobs.astype(dot.dtype) * probs).sum(axis=axis, keepdims=keepdims)


# Σ_j ∂P P of each row of scores, in the compute type: one pass, where a product and a sum made a temporary of the
# scores' size (and two launches on a GPU).
gradDotKer = Reduction("minidl_attention_grad_dot", "T dprobs, T probs", "S dot", "(S)dprobs * (S)probs", "a + b",
                       "dot = a", "0", _gradDotNumpy)


def _maskedSoftmaxGradNumpy(dprobs, probs, dot, keys, _span, scale, dscores):
    rows = probs.reshape(-1, keys).astype(dot.dtype)
    dscores.reshape(-1, keys)[...] = scale * rows * (dprobs.reshape(-1, keys) - dot.reshape(-1, 1))


# One element per ``span`` scores of a row (``valuesPerElement``: a row on the CPU, where the row's index is
# decoded once and the loop vectorizes; a score on the GPU). 32x4 heads of 64x64 scores: 0.55 ms decoding each
# score's row by a division.
maskedSoftmaxGradKer = Elementwise(
    "minidl_attention_softmax_grad",
    "raw T dprobs, raw T probs, raw S dot, int32 keys, int32 span, S scale",
    "raw T dscores",
    "const ptrdiff_t first = i * span; const S rowDot = dot[first / keys]; "
    "\n#pragma omp simd\n"
    "for (int k = 0; k < span; ++k) "
    "  dscores[first + k] = (T)(scale * (S)probs[first + k] * ((S)dprobs[first + k] - rowDot))",
    _maskedSoftmaxGradNumpy,
    grain="3 * span",
)


class MultiHeadAttention(Module):
    """``MultiHeadAttention(embed, heads, dropout=0.0, causal=False)``: self-attention over data of shape
    (time, batch, embed), or over [data, padding] with ``padding`` a bool array (batch, time), True where a
    position is padding (PyTorch's ``key_padding_mask``). ``dropout`` drops attention probabilities in
    trainMode. Backward returns ∂data (and None for the padding, which takes no gradient)."""

    cacheAttrs = ("inData", "data", "cache")

    def __init__(self, embed, heads, dropout=0.0, causal=False, dtype=numpy.float32, name=None):
        super().__init__(name)
        for what, value in (("embed", embed), ("heads", heads)):
            if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value < 1:
                raise ModuleError(f"MultiHeadAttention {what} must be a positive integer, got {value!r}")
        if embed % heads:
            raise ModuleError(f"MultiHeadAttention embed ({embed}) must be a multiple of heads ({heads})")
        dropout = checkNumber(dropout, "MultiHeadAttention dropout", low=0, high=1, highOpen=True)
        self.embed, self.heads, self.dropout, self.causal = int(embed), int(heads), float(dropout), bool(causal)
        self.headSize = self.embed // self.heads
        inProj = initWeights("xavier", self.embed, 3 * self.embed, shape=(3 * self.embed, self.embed))
        outProj = initWeights("xavier", self.embed, self.embed, shape=(self.embed, self.embed))
        for name, data in (("in_proj_weight", toDevice(inProj, dtype=dtype)),
                           ("in_proj_bias", xp.zeros((3 * self.embed,), dtype=dtype)),
                           ("out_proj_weight", toDevice(outProj, dtype=dtype)),
                           ("out_proj_bias", xp.zeros((self.embed,), dtype=dtype))):
            self.setVar(name, Variable(data, name=name))
        self.cache = None

    def checkData(self, data):
        dtype = self.vars["in_proj_weight"].data.dtype
        sequence, padding = (data[0], data[1]) if isinstance(data, (list, tuple)) and len(data) == 2 else (data, None)
        if isinstance(data, (list, tuple)) and len(data) != 2:
            raise ModuleError(f"{self!r}: input must be data or [data, padding], got {describe(data)}")
        checkArray(sequence, f"{self!r}: data", ndim=3, dtype=dtype)
        if sequence.shape[2] != self.embed or 0 in sequence.shape:
            raise ModuleError(f"{self!r}: data must have shape (time, batch, {self.embed}), got {sequence.shape}")
        if padding is not None:
            checkArray(padding, f"{self!r}: padding", dtype=numpy.bool_)
            if padding.shape != sequence.shape[1::-1]:
                raise ModuleError(f"{self!r}: padding must have shape (batch, time) = {sequence.shape[1::-1]}, "
                                  f"got {padding.shape}")

    def updData(self, data):
        sequence, padding = (data[0], data[1]) if isinstance(data, (list, tuple)) else (data, None)
        steps, batch, embed = sequence.shape
        heads, headSize = self.heads, self.headSize
        rows = xp.ascontiguousarray(sequence).reshape(-1, embed)
        qkv = matmul(rows, self.in_proj_weight.T)
        addBias(qkv, self.in_proj_bias)
        if fused(qkv.dtype, self.dropout and self.train):  # a head at a time (minidl.nn.attentionheads)
            probs = xp.empty((batch, heads, steps, steps), dtype=qkv.dtype)
            context = xp.empty((steps * batch, embed), dtype=qkv.dtype)
            attentionForward(qkv, None if padding is None else xp.ascontiguousarray(padding), probs, context, heads,
                             self.causal)
            self.cache = {"rows": rows, "qkv": qkv, "probs": probs, "context": context}
            return self.project(context, steps, batch)
        # q, k, v (batch, heads, steps, size): on the CPU views of qkv's rows, which the products read in place
        # (copying them, and kᵀ and vᵀ, took 1.0 ms of a transformer block's 17.7 ms step; the products reading rows
        # 3 embed apart take 0.5 ms more); on a GPU one copy, so that each product's batch walks one stride (one
        # cuBLAS launch: the view's strides over images and heads do not fold into one).
        laidOut = qkv.reshape(steps, batch, 3, heads, headSize).transpose(2, 1, 3, 0, 4)
        q, k, v = xp.ascontiguousarray(laidOut) if isGpu else laidOut
        scores = matmul(q, k.swapaxes(-1, -2))
        wide = numpy.float64 if scores.dtype == numpy.float64 else numpy.float32
        probs = xp.empty_like(scores)
        usePadding = padding is not None
        mask = xp.ascontiguousarray(padding) if usePadding else xp.zeros((1,), dtype=numpy.bool_)
        maskedSoftmaxKer(scores, mask, heads, steps, steps, int(self.causal), int(usePadding),
                         1 / math.sqrt(headSize), probs, xp.empty((batch, heads, steps), dtype=wide))
        draw, attended = None, probs
        if self.dropout and self.train:
            draw = deviceDraw()
            attended = dropout(probs, draw, self.dropout)
        context = cpuLaidOut((batch, heads, steps, headSize), (2, 0, 1, 3), probs.dtype)
        matmul(attended, v, out=context)
        context = xp.ascontiguousarray(context.transpose(2, 0, 1, 3)).reshape(-1, embed)
        self.cache = {"rows": rows, "q": q, "k": k, "v": v, "probs": probs, "attended": attended,
                      "draw": draw, "context": context}
        return self.project(context, steps, batch)

    def project(self, context, steps, batch):
        """The output projection of the heads' context rows (steps·batch, embed)."""
        out = matmul(context, self.out_proj_weight.T)
        addBias(out, self.out_proj_bias)
        return out.reshape(steps, batch, self.embed)

    def updGrad(self, grad):
        cache = self.cache
        steps, batch, embed = self.data.shape
        gradRows = xp.ascontiguousarray(grad).reshape(-1, embed)
        dcontext = matmul(gradRows, self.out_proj_weight)
        if "qkv" in cache:  # the forward ran a head at a time (minidl.nn.attentionheads)
            dqkv = xp.empty_like(cache["qkv"])
            attentionBackward(cache["qkv"], cache["probs"], dcontext, dqkv, self.heads, self.causal)
            return self.inputGrad(dqkv, steps, batch)
        dcontext = dcontext.reshape(steps, batch, self.heads, self.headSize).transpose(1, 2, 0, 3)
        dattended = matmul(dcontext, cache["v"].swapaxes(-1, -2))
        # ∂q, ∂k, ∂v, each (batch, heads, steps, size), read as the rows of ∂qkv (steps, batch, 3, heads, size)
        stacked = cpuLaidOut((3, *dcontext.shape), (3, 1, 0, 2, 4), dcontext.dtype)
        matmul(cache["attended"].swapaxes(-1, -2), dcontext, out=stacked[2])
        dprobs = xp.ascontiguousarray(dattended)
        if cache["draw"] is not None:
            dprobs = dropout(dprobs, cache["draw"], self.dropout)
        wide = numpy.float64 if dprobs.dtype == numpy.float64 else numpy.float32
        dot = gradDotKer(dprobs, cache["probs"], xp.empty(dprobs.shape[:-1], dtype=wide), axis=3)
        span = valuesPerElement(steps)
        dscores = maskedSoftmaxGradKer(dprobs, cache["probs"], dot, steps, span, 1 / math.sqrt(self.headSize),
                                       xp.empty_like(dprobs), size=dprobs.size // span)
        matmul(dscores, cache["k"], out=stacked[0])
        matmul(dscores.swapaxes(-1, -2), cache["q"], out=stacked[1])
        return self.inputGrad(stacked.transpose(3, 1, 0, 2, 4).reshape(-1, 3 * embed), steps, batch)

    def inputGrad(self, dqkv, steps, batch):
        """∂data from ∂qkv's rows (steps·batch, 3·embed), kept for the parameters' gradients."""
        self.cache["dqkv"] = dqkv
        dx = matmul(dqkv, self.in_proj_weight).reshape(steps, batch, self.embed)
        return [dx, None] if isinstance(self.inData, (list, tuple)) else dx

    def backward(self, grad, updGrad=True):
        """Parameter gradients need ∂qkv, which the input gradient computes too: always run both."""
        super().backward(grad, updGrad=True)
        if not updGrad:
            self.grad = None
        return self.grad

    def accGradParams(self, grad):
        gradRows = xp.ascontiguousarray(grad).reshape(-1, self.embed)
        matmul(gradRows.T, self.cache["context"], out=self.vars["out_proj_weight"].grad, accumulate=True)
        self.vars["out_proj_bias"].grad += columnSums(gradRows)
        dqkv = self.cache.pop("dqkv")
        matmul(dqkv.T, self.cache["rows"], out=self.vars["in_proj_weight"].grad, accumulate=True)
        self.vars["in_proj_bias"].grad += columnSums(dqkv)
