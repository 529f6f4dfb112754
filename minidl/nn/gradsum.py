"""``sumInto(x, out, axis)``: out += Σ x over ``axis``, in one launch: the layers' bias gradients (Σ over every axis
but the maps) and the weight gradients of products taken per image (Σ over the batch), added straight into
``var.grad``.

The sum is accumulated in double on every path (float16 and float32 sums keep their low bits; the result is
rounded once, when it is added to ``out``): ``Reduction`` ``minidl_sum_into``, CuPy's ReductionKernel on a GPU (a
block of threads per few outputs, no thread walking an axis alone), host-compiled on the CPU.
"""

import numpy

from minidl.backend import Reduction


def _sumIntoNumpy(x, out, axis, keepdims):
    out[...] = (out.astype(numpy.float64) + numpy.sum(x, axis=axis, keepdims=keepdims, dtype=numpy.float64)
                ).astype(out.dtype)


sumIntoKer = Reduction("minidl_sum_into", "T x", "T out", "x", "a + b", "out = (T)((double)out + a)", "0",
                       _sumIntoNumpy, reduceType="double")


def sumInto(x, out, axis):
    """out += Σ x over ``axis`` (an int or a tuple); ``out`` has x's shape without those axes."""
    return sumIntoKer(x, out, axis=axis)
