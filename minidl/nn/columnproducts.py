"""Products with im2col's columns made image by image on the CPU, the columns never stored whole.

    out[n] = left @ col[n]          (A, K) by (K, P): Conv2D's forward, or its ∂x as a full convolution of grad
    out[n] = col[n] @ left[n]ᵀ      (K, P) by (P, A): Conv2D's ∂Wᵀ, one product per image (summed by the caller)

where col[n] (K = C kh kw rows, P = outH outW columns) is ``im2col`` of image n of ``data``. Each of minidl's threads
takes a share of the images and, image by image, runs im2col's compiled kernel into a buffer of its own and
multiplies it there (``minidl.backend.hostblas``, its producer): the columns of an image (590 KB for 16 maps of
32x32 and a 3x3 window) stay in the core's cache between the gather and the product, where a col of the whole batch
(19 MB) went out to memory and back, and backward gathers them again instead of keeping them. The products and their
bits are those of im2col then ``products.matmul`` per image (each product the same gemm on the same values). ∂W is
taken transposed, (K, P) by (P, A) rather than (A, P) by (P, K): OpenBLAS multiplied 144x1024 by 1024x16 in 56 µs
and 16x1024 by 1024x144 in 88 (one thread, 32x288 by 288x256: 44 against 64).

For one group (``groups`` 1), float32 or float64, on the CPU where the batch runs on minidl's threads
(``hostblas.gemms``), im2col runs compiled and the products are large enough (``columnsImageByImage``);
``columnProducts`` returns None elsewhere and the caller makes col.
"""

import numpy

from minidl.backend import hostblas, hostkernel, isGpu, xp
from minidl.backend.hostblas import Producer, StridedBatch, gemms
from minidl.backend.products import runBatch
from minidl.errors import BackendError
from minidl.nn.im2col import im2colCall


def columnProducts(left, data, window, transposed=False):
    """(N, A, P) products ``left @ col[n]`` for left (A, K), or with ``transposed`` (N, K, A) products ``col[n] @
    left[n]ᵀ`` for left (N, A, P); col[n] = im2col of data[n] (data (N, C, H, W)) through ``window``. None where they
    cannot run here (see the module). Their batch is worked out once per geometry (``Window.remembered``)."""
    if isGpu or left.dtype != data.dtype or data.shape[0] < 2:
        return None
    data, left = xp.ascontiguousarray(data), xp.ascontiguousarray(left)
    plan = window.remembered(("column products", left.shape, data.shape, data.dtype, transposed),
                             lambda: _plan(left.shape, data.shape, data.dtype, window, transposed))
    if plan is None:
        return None
    batch, shape = plan
    a, b = (data, left) if transposed else (left, data)
    return runBatch(batch, a, b, xp.empty(shape, dtype=data.dtype))


def columnsImageByImage(dtype, multiplyAdds):
    """Whether ``columnProducts`` runs for data of ``dtype`` and products of ``multiplyAdds`` in all (a batch of two
    images or more): on the CPU, for float32 and float64, where minidl's threads multiply batches
    (``hostblas.gemms``), im2col runs compiled and the products are worth waking the threads for
    (``hostblas.BATCH_FROM``: the digits CNN's first convolution, 32 images of 8 maps of 8x8 from one, took its
    training step from 0.26 to 0.52 ms image by image)."""
    return (not isGpu and numpy.dtype(dtype) in gemms() and hostkernel.runsCompiled("compiled") and
            multiplyAdds >= hostblas.BATCH_FROM)


def _plan(leftShape, dataShape, dtype, window, transposed):
    """(the StridedBatch, out's shape) of these products, or None where they do not run here
    (``columnsImageByImage`` of their N A K P multiply-adds)."""
    batch, maps, height, width = dataShape
    kernel, head, tail, colShape, size = im2colCall(window, (1, maps, height, width), wide=False)
    inner, points = maps * window.size[0] * window.size[1], colShape[-2] * colShape[-1]
    rows = leftShape[-2]
    expected = (batch, rows, points) if transposed else (rows, inner)
    if tuple(leftShape) != expected:
        raise BackendError(f"columnProducts: left must be {expected} for data of shape {dataShape} and {window}, got "
                           f"{tuple(leftShape)}")
    if not columnsImageByImage(dtype, batch * rows * inner * points):
        return None
    args = (numpy.empty((1, maps, height, width), dtype), *head, 0, *tail, numpy.empty(colShape, dtype))
    call = kernel.hostCall(args, size=size)
    if call is None:
        return None
    image = maps * height * width
    if transposed:  # col[n] (K, P), made into A, by left[n]ᵀ: left[n] read by columns
        stridedBatch = StridedBatch(dtype, (inner, rows, points), (False, points), (True, points), rows,
                                    (image, rows * points, inner * rows), batch, False,
                                    Producer(call, 0, len(args) - 1, operand=0))
        return stridedBatch, (batch, inner, rows)
    stridedBatch = StridedBatch(dtype, (rows, points, inner), (False, inner), (False, points), points,
                                (0, image, rows * points), batch, False, Producer(call, 0, len(args) - 1))
    return stridedBatch, (batch, rows, points)
