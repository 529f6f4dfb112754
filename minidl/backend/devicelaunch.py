"""A device kernel's launches with one signature, prepared at the first (issue 25: a call checks everything the
first time it sees a signature, then only what can differ, on the GPU as on the CPU).

An Elementwise or Reduction call on CuPy arrays used to take every check at every launch (the count and kinds of
its arguments, one device, contiguity, shapes, dtypes bound to placeholders, scalars typed): 7.6 µs of Python on the
simulated device before CuPy's own call. Its first call of a signature (the kernel's key of the arguments' types,
and for a Reduction their dtypes and shapes, axis and keepdims) still takes all of them; later calls of that
signature go through its PreparedLaunch, one pass that checks what the signature does not fix (each array's dtype
and C-contiguity, a raw array's ndim, which picks CuPy's binary; an Elementwise's non-raw arrays sharing one
shape), types the scalars as the first call did, and launches. An argument that differs makes the launch return
False having launched nothing, and the caller takes the full checks, which raise the same errors as before. CuPy
arrays are always writable, and the signature fixes that every array is one on the device. Calls with live values
(a CUDA graph's capture) are never prepared.
"""

from minidl.backend.device import isArray
from minidl.backend.hostkernel import scalarType


class PreparedLaunch:
    """``launch(args, **keywords)``: launch ``kernel`` (a cupy.ElementwiseKernel or ReductionKernel) on ``args``,
    whose signature was checked once as ``typed`` (the first call's arguments, scalars typed), with ``fixed``
    keywords (a Reduction's axis and keepdims) and the call's own (an Elementwise's size), and return True; or return
    False having launched nothing. ``sameShape``: the indices of the arrays that must share one shape; ``raw``: the
    indices of the raw arrays, whose ndim must stay the first call's."""

    def __init__(self, kernel, typed, sameShape=(), raw=(), **fixed):
        self.kernel, self.sameShape, self.fixed = kernel, tuple(sameShape), fixed
        self.arrays = tuple((index, arg.dtype, arg.ndim if index in raw else None)
                            for index, arg in enumerate(typed) if isArray(arg))
        self.scalars = tuple((index, scalarType(arg.dtype)) for index, arg in enumerate(typed) if not isArray(arg))

    def __call__(self, args, **keywords):
        for index, dtype, ndim in self.arrays:
            arg = args[index]
            if arg.dtype != dtype or not arg.flags.c_contiguous or (ndim is not None and arg.ndim != ndim):
                return False
        if self.sameShape:
            shape = args[self.sameShape[0]].shape
            for index in self.sameShape[1:]:
                if args[index].shape != shape:
                    return False
        if self.scalars:
            args = list(args)
            try:
                for index, scalar in self.scalars:
                    args[index] = scalar(args[index])
            except (OverflowError, ValueError, TypeError):  # does not fit: the full checks say so
                return False
        self.kernel(*args, **self.fixed, **keywords)
        return True
