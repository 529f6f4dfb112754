"""Tensor cores by choice: ``allowTF32(True)`` lets float32 products run on TF32 tensor cores.

Off by default, so float32 products stay exact float32 (cuBLAS's CUBLAS_COMPUTE_32F: every product of two float32
numbers kept in full, summed in float32). Allowed, float32 products use CUBLAS_COMPUTE_32F_FAST_TF32: each input
rounded to TF32 (a 10-bit mantissa, float32's range) before its products, which are summed in float32; several times
faster on an Ampere or later GPU, with a relative error per product of about 2^-11 instead of 2^-24. Float16 products
always run on tensor cores with float32 accumulation (CUBLAS_COMPUTE_32F, as CuPy's COMPUTE_TYPE_FP32 gives them),
never with float16 sums; float64 products are float64.

On a GPU this sets CuPy's cuBLAS compute type per dtype (``cupy._core.set_compute_type``), which CuPy's products of
at most two axes (``dot``, ``@`` and ``matmul`` of matrices, ``tensordot``) go through; it is set when minidl's
backend loads, so CuPy's own ``CUPY_TF32`` environment variable does not change it behind minidl's back. CuPy's
batched matmul ignores it (it runs plain float32); minidl's batched products (``minidl.backend.products``) read
``tf32Allowed`` and pass the compute type to cuBLAS themselves. On a GPU before
Ampere, CuPy warns and keeps float32 for TF32. On the simulated device the choice is recorded in each product's
trace entry (``Launch.math``: "tf32", "fp32", "fp16", "fp64"), which ``minidl profile``'s model times at tensor-core
throughput for "tf32" and "fp16". On the CPU the flag changes nothing: NumPy's products are exact in their dtype.
"""

import numpy

from minidl.backend.device import isGpu, xp
from minidl.errors import BackendError

_allowed = [False]


def allowTF32(allowed=True):
    """Let float32 products use TF32 tensor cores (``True``) or keep them exact float32 (``False``, the default)."""
    if not isinstance(allowed, bool):
        raise BackendError(f"allowTF32 takes True or False, got {allowed!r}")
    _allowed[0] = allowed
    _apply()


def tf32Allowed():
    """Whether float32 products may use TF32 tensor cores (``allowTF32``)."""
    return _allowed[0]


def _apply():
    """Set the cuBLAS compute types of float32 (TF32 or exact float32) and float16 (float32 accumulation) on a GPU;
    nothing on the CPU."""
    if not isGpu:
        return
    core, types = xp._core, xp._core._routines_linalg  # where CuPy 14 keeps the COMPUTE_TYPE_ constants
    core.set_compute_type(numpy.float32, types.COMPUTE_TYPE_TF32 if _allowed[0] else types.COMPUTE_TYPE_FP32)
    core.set_compute_type(numpy.float16, types.COMPUTE_TYPE_FP32)


_apply()
