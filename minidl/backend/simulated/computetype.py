"""cuBLAS compute types on the simulated device, as CuPy 14's ``cupy._core.set_compute_type`` and
``get_compute_type`` keep them (one per float16, float32 and float64; ``CUPY_TF32=1`` makes float32's default TF32),
and the math a product of each dtype then runs in, recorded in the product's launch (``trace.Launch.math``):

    float16: "fp16" (tensor cores, float32 accumulation: CUBLAS_COMPUTE_32F), "fp32" under COMPUTE_TYPE_PEDANTIC
    float32: "tf32" (tensor cores: CUBLAS_COMPUTE_32F_FAST_TF32) under COMPUTE_TYPE_TF32, else "fp32"
    float64: "fp64"
"""

import os

import numpy

COMPUTE_TYPE_TBD, COMPUTE_TYPE_DEFAULT, COMPUTE_TYPE_PEDANTIC, COMPUTE_TYPE_FP16 = 0, 1, 2, 3
COMPUTE_TYPE_FP32, COMPUTE_TYPE_FP64, COMPUTE_TYPE_BF16, COMPUTE_TYPE_TF32 = 4, 5, 6, 7
TENSOR_CORE_MATH = ("fp16", "tf32")  # the products gpumodel times at tensor-core throughput

_computeTypes = [COMPUTE_TYPE_TBD] * 3  # float16, float32, float64


def _index(dtype):
    char = numpy.dtype(dtype).char
    for index, chars in enumerate(("e", "fF", "dD")):
        if char in chars:
            return index
    raise TypeError(f"dtype is not supported: {dtype}")


def set_compute_type(dtype, compute_type):
    if compute_type not in range(8):
        raise ValueError(f"Unknown compute type: {compute_type}")
    _computeTypes[_index(dtype)] = compute_type  # the simulated GPU is an H100: TF32 and BF16 are available


def get_compute_type(dtype):
    index = _index(dtype)
    if _computeTypes[index] == COMPUTE_TYPE_TBD:
        tf32 = numpy.dtype(dtype).char in "fF" and int(os.getenv("CUPY_TF32", "0")) > 0
        set_compute_type(dtype, COMPUTE_TYPE_TF32 if tf32 else COMPUTE_TYPE_DEFAULT)
    return _computeTypes[index]


def productMath(dtype):
    """The math a cuBLAS product with results of ``dtype`` runs in (the module's docstring), "" for other dtypes."""
    char = numpy.dtype(dtype).char
    if char not in "efFdD":
        return ""
    computeType = get_compute_type(dtype)
    if char == "e":
        return "fp32" if computeType == COMPUTE_TYPE_PEDANTIC else "fp16"
    if char in "fF":
        return "tf32" if computeType == COMPUTE_TYPE_TF32 else "fp32"
    return "fp64"
