"""Self-attention a head at a time on the CPU (``attentionheads.cpp``): one call for every head's scores, softmax and
context, one for every head's backward, on minidl's threads, where MultiHeadAttention otherwise makes two batched
products and a softmax kernel forward and five calls backward, each over all heads' scores (see the C++ for the maths
and layouts).

    forward:   P = softmax(q kᵀ / sqrt(d) + mask) per head,   context = P v
    backward:  ∂P = ∂context vᵀ,  ∂v = Pᵀ ∂context,  ∂s = P (∂P - Σ_j ∂P P) / sqrt(d),  ∂q = ∂s k,  ∂k = ∂sᵀ q

For float32 and float64 on the CPU with compiled kernels, without dropout on the probabilities (``fused``).
"""

import ctypes
import functools
from pathlib import Path

import numpy

from minidl.backend import hostkernel, isGpu
from minidl.backend.hostkernel import address
from minidl.backend.tape import Recorder, plain

SOURCE = Path(__file__).with_name("attentionheads.cpp")
TYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def fused(dtype, dropping):
    """Whether attention of ``dtype`` runs a head at a time here: on the CPU with compiled kernels, float32 or float64,
    and not ``dropping`` (dropout on the probabilities, which the device's random stream draws)."""
    return not isGpu and numpy.dtype(dtype) in TYPES and not dropping and hostkernel.runsCompiled("compiled")


@functools.cache
def _functions():
    """(``minidl_attention_forward``, ``minidl_attention_backward``) with their argument types, built at first use."""
    library = hostkernel.loadVectorLibrary(SOURCE, "minidl_attention_heads")
    functions = library.minidl_attention_forward, library.minidl_attention_backward
    for function in functions:
        function.argtypes = [ctypes.c_int, ctypes.c_void_p] + [ctypes.c_void_p] * 4
        function.restype = None
    return functions


class AttentionForward(hostkernel.NumberedCall):
    """One shape's forward: ``call(qkv, padding, probs, context)`` writes probs and context; the arrays must have the
    shapes, dtype and C order it was made for (not checked again), padding None where there is none."""

    __name__ = "attention_forward_heads"  # a recorded call's name in a tape's listings

    def __call__(self, qkv, padding, probs, context):
        self.function(self.real, self.numbersAt, address(qkv), address(padding), address(probs), address(context))


class AttentionBackward(hostkernel.NumberedCall):
    """One shape's backward: ``call(qkv, probs, dcontext, dqkv)`` writes dqkv; the arrays must have the shapes, dtype
    and C order it was made for (not checked again)."""

    __name__ = "attention_backward_heads"  # a recorded call's name in a tape's listings

    def __call__(self, qkv, probs, dcontext, dqkv):
        self.function(self.real, self.numbersAt, address(qkv), address(probs), address(dcontext), address(dqkv))


@functools.lru_cache(maxsize=64)  # a shape's call, kept: a text task's sequences may come in many lengths
def _call(kind, dtype, steps, batch, heads, size, causal):
    function = _functions()[0 if kind is AttentionForward else 1]
    return kind(function, dtype, (steps, batch, heads, size, int(causal)))


def _run(kind, args, steps, batch, heads, causal, writes, padding=None):
    """Run one shape's call on ``args`` (C-contiguous arrays of one dtype; forward's ``padding`` at position 1, a
    C-contiguous bool array or None); a recording tape records it."""
    args = plain(args)
    qkv = args[0]
    for position, arg in enumerate(args):
        dtype = numpy.bool_ if position == padding else qkv.dtype
        if (arg is not None or position != padding) and (not arg.flags.c_contiguous or arg.dtype != dtype):
            raise ValueError(f"{kind.__name__}: arrays must be C-contiguous, of qkv's dtype (the padding bool)")
    call = _call(kind, qkv.dtype, steps, batch, heads, qkv.shape[1] // (3 * heads), causal)
    call(*args)
    if Recorder.tape is not None and not Recorder.paused:
        Recorder.tape.add(call, args, writes=tuple(args[position] for position in writes))


def attentionForward(qkv, padding, probs, context, heads, causal):
    """Every head's attention (see the module): qkv (T B, 3 E) the projections' rows, padding (B, T) bool or None,
    probs (B, H, T, T) and context (T B, E) written."""
    steps, batch = probs.shape[2], probs.shape[0]
    _run(AttentionForward, (qkv, padding, probs, context), steps, batch, heads, causal, (2, 3), padding=1)


def attentionBackward(qkv, probs, dcontext, dqkv, heads, causal):
    """Every head's backward (see the module): qkv (T B, 3 E), probs (B, H, T, T) as forward left them, dcontext
    (T B, E); dqkv (T B, 3 E) written. ``causal`` as forward's (past a band's keys its probabilities are 0)."""
    steps, batch = probs.shape[2], probs.shape[0]
    _run(AttentionBackward, (qkv, probs, dcontext, dqkv), steps, batch, heads, causal, (3,))
