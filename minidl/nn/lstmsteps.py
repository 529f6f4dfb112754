"""An LSTM direction's whole step loop in one call on the CPU (``lstmsteps.cpp``): each step's recurrent product and
its cell, forward and backward, on minidl's threads, where the RNN otherwise makes a product and a kernel call per
step (rnnkernels' lstm kernels, which give the cells' maths).

    forward, step s:  a = (xproj[t] + bᵢₕ) + (hs[s] Wₕₕᵀ + bₕₕ), (i, f, g, o) = (σ, σ, tanh, σ)(a),
                      cs[s+1] = f cs[s] + i g, hs[s+1] = o tanh(cs[s+1])
    backward, step s: dh = dgates[t'] Wₕₕ with t' step s+1's time (the final state's gradient at the last step),
                      then the cell's derivatives as rnnkernels.lstmGradKer into dgates[t], their sum over the rows
                      added to the biases' gradient; the last loop leaves ∂h₀ in dh and ∂c₀ in dc.

A batch row's recurrence reads only its own states, so each of minidl's threads takes groups of four batch rows and
runs every step for them, without waiting for another thread: per step and block of hidden units, the four gates'
recurrent sums for the four rows in vector registers (every term in order, fused multiply-adds, as
``hostblas.SmallProduct``), then the block's cells from there. A value does not depend on the number of threads.

For float32 and float64 on the CPU with compiled kernels, where they beat the per-step products (``fused``).
"""

import ctypes
import functools
from pathlib import Path

import numpy

from minidl.backend import hostkernel, isGpu
from minidl.backend.hostkernel import address
from minidl.backend.products import SMALL_ROWS
from minidl.backend.tape import Recorder, plain

SOURCE = Path(__file__).with_name("lstmsteps.cpp")
TYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
# The loops read Wₕₕ again for every four batch rows, from the core's cache where it fits; beyond SMALL_ROWS rows the
# per-step products are OpenBLAS's, which block it for the cache. 32 steps of 128 rows (float32, 2 cores): 512 units
# (Wₕₕ 4 MiB) 202 ms fused against 95 per step; 256 units (1 MiB) 25 against 29; 64 rows of 512 units 103 against 134.
FUSED_WEIGHTS_UP_TO = 2 << 20


def fused(dtype, batch, hsize):
    """Whether an LSTM of ``dtype``, ``batch`` rows and ``hsize`` units runs its steps here: on the CPU with compiled
    kernels, float32 or float64, where the loops beat the per-step products: always up to ``products.SMALL_ROWS``
    batch rows (whose step products are minidl's own kernel, as the loops' sums), beyond that up to
    ``FUSED_WEIGHTS_UP_TO`` bytes of Wₕₕ."""
    dtype = numpy.dtype(dtype)
    return (not isGpu and dtype in TYPES and hostkernel.runsCompiled("compiled") and
            (batch <= SMALL_ROWS[1] or 4 * hsize * hsize * dtype.itemsize <= FUSED_WEIGHTS_UP_TO))


@functools.cache
def _functions():
    """(``minidl_lstm_forward``, ``minidl_lstm_backward``) with their argument types, built at the first use."""
    library = hostkernel.loadVectorLibrary(SOURCE, "minidl_lstm_steps")
    functions = library.minidl_lstm_forward, library.minidl_lstm_backward
    for function, arrays in zip(functions, (7, 8)):
        function.argtypes = [ctypes.c_int, ctypes.c_void_p] + [ctypes.c_void_p] * arrays
        function.restype = None
    return functions


class LstmForward(hostkernel.NumberedCall):
    """One shape's forward step loop: ``loop(xproj, wHh, bih, bhh, hs, cs, gates)`` writes hs[1:], cs[1:] and gates;
    the arrays must have the shapes, dtype and C order it was made for (not checked again)."""

    __name__ = "lstm_forward_steps"  # a recorded call's name in a tape's listings

    def __call__(self, xproj, wHh, bih, bhh, hs, cs, gates):
        self.function(self.real, self.numbersAt, address(xproj), address(wHh), address(bih), address(bhh),
                      address(hs), address(cs), address(gates))


class LstmBackward(hostkernel.NumberedCall):
    """One shape's backward step loop: ``loop(dOut, wHh, cs, gates, dh, dc, dgates, dbias)`` writes dgates, turns dh
    and dc into ∂h₀ and ∂c₀ and adds the biases' gradient to dbias; the arrays must have the shapes, dtype and C order
    it was made for (not checked again)."""

    __name__ = "lstm_backward_steps"  # a recorded call's name in a tape's listings

    def __call__(self, dOut, wHh, cs, gates, dh, dc, dgates, dbias):
        self.function(self.real, self.numbersAt, address(dOut), address(wHh), address(cs), address(gates),
                      address(dh), address(dc), address(dgates), address(dbias))


@functools.lru_cache(maxsize=64)  # a shape's call, kept: a text task's sequences may come in many lengths
def _loop(kind, dtype, steps, batch, hsize, reverse):
    function = _functions()[0 if kind is LstmForward else 1]
    return kind(function, dtype, (steps, batch, hsize, int(reverse)))


def _run(kind, args, reverse):
    """Run one shape's loop on ``args`` (C-contiguous arrays, as the loop's call takes them, the last three those it
    writes); a recording tape records it."""
    args = plain(args)
    steps, batch, hsize = args[6].shape[0], args[6].shape[1], args[6].shape[2] // 4
    for arg in args:
        if not arg.flags.c_contiguous or arg.dtype != args[0].dtype:
            raise ValueError(f"{kind.__name__}: arrays must be C-contiguous of one dtype")
    loop = _loop(kind, args[0].dtype, steps, batch, hsize, reverse)
    loop(*args)
    if Recorder.tape is not None and not Recorder.paused:
        Recorder.tape.add(loop, args, writes=args[4:])


def lstmForwardSteps(xproj, wHh, bih, bhh, hs, cs, gates, reverse):
    """Every step of one direction (see the module): xproj (steps, batch, 4H) in time order, wHh (4H, H), bih and bhh
    (4H,); hs and cs (steps + 1, batch, H) with [0] the initial states, their [1:] written; gates (steps, batch, 4H)
    written; ``reverse``: steps in reverse time."""
    _run(LstmForward, (xproj, wHh, bih, bhh, hs, cs, gates), reverse)


def lstmBackwardSteps(dOut, wHh, cs, gates, dh, dc, dgates, dbias, reverse):
    """The steps of one direction in reverse (see the module): dOut (steps, batch, H) in time order, wHh (4H, H), cs
    and gates as forward left them; dh and dc (batch, H), the final states' gradients, become ∂h₀ and ∂c₀; dgates
    (steps, batch, 4H) written in time order; dbias (4H,) += Σ dgates over the steps and rows (each step's rows summed
    first)."""
    _run(LstmBackward, (dOut, wHh, cs, gates, dh, dc, dgates, dbias), reverse)
