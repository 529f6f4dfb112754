"""Convolutions of stride 1 computed directly on the CPU (``directconv.cpp``): no im2col, no matrix product.

    y[n, o, oy, ox] = b[o] + Σ_{c, ky, kx} W[o, c, ky, kx] x[n, c, oy - ph + ky dy, ox - pw + kx dx]

and, with ``flipped``, the "full" convolution that gives a layer's ∂x from its gradient, W (O, C, kh, kw) read as
W[c, o, kh-1-ky, kw-1-kx] for the gradient's O maps in and C maps out; ``addDirectWeightGradient`` adds ∂W. Each of
minidl's threads takes (image, block of 8 output maps) pairs and sums every tap into registers, a vector of
consecutive positions per load: the columns of im2col are never written, where im2col then a product per image wrote
and re-read 590 KB an image for 16 maps of 32x32 and multiplied 16 rows by them. Where the output maps are as wide
as the input's (a "same" convolution) and the CPU has AVX-512, the kernels read x (and the gradient) in place, the
lanes that fall in the pads masked off as they load (``inPlace``); elsewhere each image is first copied, padded, and
the positions past each row's end computed and dropped. Measured (32 images, 3x3, pad 1, 2 cores, the forward pass):
16 maps of 32x32 0.61 ms in place, 0.70 padded, 1.40 by im2col and its products; 32 of 16x16 0.56, 0.66, 1.12; 64 of
8x8 0.58, 0.77, 0.83. Each value is summed in the order (c, ky, kx) with fused multiply-adds, as OpenBLAS's kernel
sums im2col's rows: the same bits where its gemm takes the 144 rows of a 3x3 window over 16 maps in one pass.

For one group, float32 or float64, on the CPU with compiled kernels (``directly``): Conv2D (and Conv1D through it)
takes it for its forward pass and its ∂x, and for ∂W where its maps are large (``conv2d.DIRECT_WEIGHTS_FROM``) or
taken in place (its ∂W then 0.82, 0.75 and 0.81 ms for those three, against 0.92, 1.06 and 1.10 by im2col's products
image by image and their sum), small maps too (8 maps of 8x8 from 1, 32 images: forward and backward 90 µs against
141 with the batch inside im2col's columns; ``conv2d.IN_PLACE_SMALL_MAPS_UP_TO``). A call's arrays' addresses are
read where NumPy keeps them (``hostkernel.address``), and its threads woken only from the pool's ``parallelFrom``
vector multiply-adds: a convolution of one 8x8 image costs about 3.6 µs a call replayed, as the three calls of im2col,
its product and the bias did.
"""

import ctypes
import functools
from pathlib import Path

import numpy

from minidl.backend import hostkernel, isGpu, xp
from minidl.backend.hostkernel import address
from minidl.backend.tape import Recorder, plain

SOURCE = Path(__file__).with_name("directconv.cpp")
TYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
IN_PLACE_VECTOR_BYTES = 64  # the kernels' vectors where they take maps in place (AVX-512's)


def directly(window, groups, dtype):
    """Whether a convolution of ``window``, ``groups`` and ``dtype`` runs here: on the CPU with compiled kernels,
    stride 1, one group, float32 or float64."""
    return (not isGpu and groups == 1 and window.stride == (1, 1) and numpy.dtype(dtype) in TYPES and
            hostkernel.runsCompiled("compiled"))


@functools.cache
def _functions():
    """(``minidl_direct_conv``, ``minidl_direct_conv_weights``, ``minidl_direct_conv_in_place``) with their argument
    types, built at the first direct convolution."""
    library = hostkernel.loadVectorLibrary(SOURCE, "minidl_direct_conv")
    forward, weights = library.minidl_direct_conv, library.minidl_direct_conv_weights
    forward.argtypes = [ctypes.c_int, ctypes.c_void_p] + [ctypes.c_void_p] * 4
    weights.argtypes = [ctypes.c_int, ctypes.c_void_p] + [ctypes.c_void_p] * 3
    forward.restype = weights.restype = None
    inPlace = library.minidl_direct_conv_in_place
    inPlace.argtypes, inPlace.restype = [ctypes.c_void_p], ctypes.c_int
    return forward, weights, inPlace


def _numbers(dataShape, outMaps, window, flipped=False):
    """``minidl_direct_conv``'s numbers for data of ``dataShape`` (N, C, H, W) and ``outMaps`` maps out through
    ``window`` (stride 1)."""
    batch, maps, height, width = dataShape
    (kh, kw), (ph, pw), (dy, dx) = window.size, window.pad, window.dilation
    outH, outW = height + 2 * ph - dy * (kh - 1), width + 2 * pw - dx * (kw - 1)
    return [batch, maps, height, width, outMaps, kh, kw, ph, pw, dy, dx, int(flipped), outH, outW]


def inPlace(dataShape, outMaps, window):
    """Whether the kernels take the convolution of data of ``dataShape`` through ``window`` in place (its output maps
    as wide as its input's, on a CPU with AVX-512; see the module). Asked once per geometry, kept by the window."""
    def ask():
        numbers = numpy.array(_numbers(dataShape, outMaps, window), dtype=numpy.int64)
        return bool(_functions()[2](numbers.ctypes.data))

    return window.remembered(("in place", tuple(dataShape), outMaps), ask)


class DirectConvolution(hostkernel.NumberedCall):
    """One geometry's direct convolution (its numbers: ``minidl_direct_conv``'s): ``convolution(x, weights, bias, y)``
    (bias None: none) writes y; the arrays must have the shapes, dtype and C order it was made for (not checked
    again)."""

    __name__ = "direct_conv"  # a recorded call's name in a tape's listings

    def __call__(self, x, weights, bias, y):
        self.function(self.real, self.numbersAt, address(x), address(weights), address(bias), address(y))
        return y


def directConvolution(data, weights, bias, window, flipped=False):
    """The convolution of data (N, C, H, W) through ``window`` (stride 1) with weights (O, C, kh, kw), or with
    ``flipped`` the full convolution by weights (C, O, kh, kw) (see the module; ``window`` then has the full
    convolution's pads), plus ``bias`` (O,) unless None: y (N, O, outH, outW), a new array. Its call is worked out
    once per geometry and kept by the window; a recording tape records it."""
    data, weights = xp.ascontiguousarray(data), xp.ascontiguousarray(weights)
    numbers = _numbers(data.shape, weights.shape[1 if flipped else 0], window, flipped)
    convolution = window.remembered(("direct", data.shape, weights.shape, data.dtype, flipped),
                                    lambda: DirectConvolution(_functions()[0], data.dtype, numbers))
    out = xp.empty((numbers[0], numbers[4], *numbers[12:]), dtype=data.dtype)
    args = plain((data, weights, bias, out))
    convolution(*args)
    if Recorder.tape is not None and not Recorder.paused:
        Recorder.tape.add(convolution, args, writes=args[3])
    return out


class DirectWeightGradient(hostkernel.NumberedCall):
    """One geometry's ∂W of a direct convolution (its numbers: ``minidl_direct_conv_weights``'s): ``gradient(x, grad,
    gradW)`` adds into gradW; the arrays must have the shapes, dtype and C order it was made for (not checked
    again)."""

    __name__ = "direct_conv_weights"  # a recorded call's name in a tape's listings

    def __call__(self, x, grad, gradW):
        self.function(self.real, self.numbersAt, address(x), address(grad), address(gradW))
        return gradW


def addDirectWeightGradient(data, grad, window, gradW):
    """gradW (O, C, kh, kw), C-contiguous, += ∂W of the convolution of data (N, C, H, W) through ``window`` (stride
    1) for its gradient grad (N, O, outH, outW):

        ∂W[o, c, ky, kx] = Σ_{n, oy, ox} grad[n, o, oy, ox] x[n, c, oy - ph + ky dy, ox - pw + kx dx]

    Each (block of 8 output maps, group of input maps: 32 in place, 8 padded) is one thread's, summed over every image
    in order, 3 taps of an input map at a time over vectors of positions, the vectors' lanes summed pairwise at the
    end. Padded, the positions past a row's end, which the gradient's zeros drop, also read x, so a sum that comes
    out not finite (0 x inf = NaN for an infinity no window reads) is made once more over the valid positions alone;
    in place, those lanes read nothing. Worked out once per geometry and kept by the window; a recording tape records
    it."""
    data, grad = xp.ascontiguousarray(data), xp.ascontiguousarray(grad)
    gradient = window.remembered(
        ("direct weights", data.shape, grad.shape, data.dtype),
        lambda: DirectWeightGradient(_functions()[1], data.dtype, _numbers(data.shape, grad.shape[1], window)))
    args = plain((data, grad, gradW))
    gradient(*args)
    if Recorder.tape is not None and not Recorder.paused:
        Recorder.tape.add(gradient, args, writes=args[2])
