"""Matrix products on the CPU on minidl's threads (``hostgemm.cpp``): a strided batch shared among them, and one
product split among them in rows or columns (``SplitProduct``), or, for few rows, made by minidl's own kernel
(``SmallProduct``, ``hostsmallgemm.cpp``: no packing, the threads sharing the columns).

    C[n] = A[n] B[n]   (C[n] += A[n] B[n] with ``accumulate``)   for n < count,

each matrix of a batch at a fixed stride from the one before (0: the same matrix for the whole batch).

NumPy's matmul of stacked matrices calls its BLAS's gemm once per matrix, each call threaded over the matrix's rows
and columns: a convolution's products per image (16x144 by 144x1024 for 32 images, on the 2-core machine) ran at
60-110 GFLOP/s, each matrix too small to share between two threads. Here each of minidl's threads takes a share of
the batch and multiplies its matrices with the same gemm run single-threaded: 1.3-1.9x faster. The bits are NumPy's:
one matrix's sums are made by the same kernel in the same order whichever thread runs it (OpenBLAS's threads split
rows and columns, never a sum). OpenBLAS's own batch call (``cblas_sgemm_batch_strided``, 0.3.30 on) would do the
same, but in NumPy's OpenBLAS 0.3.31 it jumps to a null kernel for small matrices (16x64 by 64x64: a crash).

One product of two matrices is split the same way, each thread a contiguous range of C's rows or columns. NumPy's
matmul would run it on OpenBLAS's own threads, whose worker then spins (it burned 96% of a core for the 50 ms after
a product, about 0.1 s in all) and took part of a core from minidl's next kernels: with every product of a step
made here, OpenBLAS's threads stay asleep (a transformer block's captured step 22.0 → 16.0 ms with its batches walked
by two strides, the residual CNN's 35.2 → 29.9, on the 2-core VM).

Runs where NumPy's BLAS is the OpenBLAS of its wheels (found beside NumPy, with ``openblas_set_num_threads_local``,
which in that build sets the process's count: while a batch runs, a product of another Python thread is
single-threaded too) and a C++ compiler builds minidl's kernels; elsewhere ``gemms()`` is empty and products stay
NumPy's matmul (``minidl.backend.products``; ``hostBlas()`` says which). With one thread (``OMP_NUM_THREADS=1``)
a plain batch or product has nothing to share and stays NumPy's; a batch whose matrices a kernel makes still runs
here.
"""

import ctypes
import functools
import os
from pathlib import Path

import numpy

from minidl.backend import hostkernel
from minidl.backend.hostkernel import address

GEMM_SOURCE = Path(__file__).with_name("hostgemm.cpp")
SMALL_GEMM_SOURCE = Path(__file__).with_name("hostsmallgemm.cpp")
# The multiply-adds of a whole batch from which it is shared among the threads: waking them costs about 9 µs (32
# products of 8x9 by 9x64 took 12.7 µs so, 3.5 through NumPy's matmul), which half the products' time must beat.
BATCH_FROM = 2 ** 20
# The multiply-adds of one product from which it is split among the threads; NumPy's OpenBLAS 0.3.31 multiplies a
# smaller one on one thread itself (its threads stayed asleep after 1,000,000 multiply-adds, spun after 1,032,192),
# and a call of its own costs less (1x64 by 64x256: 1.7 µs, 5.4 split).
SPLIT_FROM = 2 ** 19
TRANS, NO_TRANS = 112, 111  # CBLAS's enums


def _numpyOpenBlas():
    """(NumPy's OpenBLAS library, its integer width in bytes), or None where NumPy's BLAS is another or not found."""
    try:
        config = numpy.show_config(mode="dicts")
    except TypeError:  # NumPy before 1.25 only prints its configuration
        return None
    blas = config.get("Build Dependencies", {}).get("blas", {})
    if "openblas" not in str(blas.get("name", "")).lower():
        return None
    here = Path(numpy.__file__).parent
    found = [path for folder in (here.parent / "numpy.libs", here / ".dylibs") if folder.is_dir()
             for path in sorted(folder.iterdir()) if path.name.startswith(("libscipy_openblas", "libopenblas"))]
    if not found:
        return None
    return ctypes.CDLL(os.fspath(found[0])), 8 if "USE64BITINT" in str(blas.get("openblas configuration", "")) else 4


def _symbol(library, names):
    """The address of the first of ``names`` that ``library`` exports, or None."""
    for name in names:
        function = getattr(library, name, None)
        if function is not None:
            return ctypes.cast(function, ctypes.c_void_p).value
    return None


@functools.cache
def _blas():
    """(NumPy's OpenBLAS library, its integer width, the address of its thread count setter), or None where the
    batch cannot run (another BLAS, no compiler, no setter). Looked up once, at the first product over a batch."""
    found = _numpyOpenBlas()
    if found is None or hostkernel.findCompiler() is None:
        return None
    library, integer = found
    localThreads = _symbol(library, ("openblas_set_num_threads_local", "scipy_openblas_set_num_threads_local64_"))
    return None if localThreads is None else (library, integer, localThreads)


@functools.cache
def gemms():
    """{dtype: (gemm's address, the BLAS's integer width)} for float32 and float64; {} where products cannot run
    here."""
    blas = _blas()
    if blas is None:
        return {}
    library, integer, _ = blas
    gemms = {}
    for dtype, letter in ((numpy.float32, "s"), (numpy.float64, "d")):
        address = _symbol(library, (f"scipy_cblas_{letter}gemm64_", f"scipy_cblas_{letter}gemm", f"cblas_{letter}gemm"))
        if address is not None:
            gemms[numpy.dtype(dtype)] = address, integer
    return gemms


def hostBlas():
    """What multiplies a strided batch or a split product on the CPU: "minidl's threads, one gemm each" or "NumPy
    matmul"."""
    return "minidl's threads, one gemm each" if gemms() else "NumPy matmul"


@functools.cache
def _functions():
    """(``minidl_gemm_batch``, ``minidl_gemm_split``) with their argument types, and the address of the BLAS's
    thread-local thread count; loaded at the first product made here."""
    hostkernel.threadPool()
    library = hostkernel.loadLibrary(GEMM_SOURCE.read_text(), "minidl_gemm")
    batch, split = library.minidl_gemm_batch, library.minidl_gemm_split
    batch.argtypes = [ctypes.c_int, ctypes.c_int] + [ctypes.c_void_p] * 6 + [ctypes.c_double, ctypes.c_void_p]
    split.argtypes = [ctypes.c_int, ctypes.c_int] + [ctypes.c_void_p] * 6 + [ctypes.c_double]
    batch.restype = split.restype = None
    return batch, split, _blas()[2]


class Producer(ctypes.Structure):
    """A compiled kernel's call that makes each B[n] of a batch (A[n] with ``operand`` 0; ``hostgemm.cpp``): the
    kernel with its arguments as it was called once (``call``: an Elementwise's ``hostCall``), but for argument
    ``input``, which each product replaces by its B[n] (A[n]) as the batch's strides give it (the image to gather),
    and ``output``, by a buffer of its thread's own."""

    _fields_ = [("kernel", ctypes.c_void_p), ("args", ctypes.c_void_p), ("count", ctypes.c_int64),
                ("input", ctypes.c_int64), ("output", ctypes.c_int64), ("size", ctypes.c_int64),
                ("bufferBytes", ctypes.c_int64), ("operand", ctypes.c_int64), ("rawShapes", ctypes.c_void_p)]

    def __init__(self, call, input, output, operand=1):
        function, args, rawShapes, size = call
        self.scalars, self.addresses = function.arguments(args)
        sides = [side for shape in rawShapes for side in shape]
        self.sides = (ctypes.c_ssize_t * max(1, len(sides)))(*sides)
        self.function, self.given = function, args  # alive as long as their addresses are read
        super().__init__(ctypes.cast(function.function, ctypes.c_void_p), ctypes.addressof(self.addresses), len(args),
                         input, output, size, args[output].nbytes, operand, ctypes.addressof(self.sides))


def _head(dtype, shape, layoutA, layoutB, ldc, *more):
    """The leading arguments of ``minidl_gemm_batch`` and ``minidl_gemm_split``: (the real's width, the BLAS's
    integer width, its gemm, its thread count setter, the numbers: both operands' transpose flags, ``shape``, the
    leading dimensions, then ``more``)."""
    dtype = numpy.dtype(dtype)
    gemm, integer = gemms()[dtype]
    (transA, lda), (transB, ldb) = layoutA, layoutB
    numbers = (ctypes.c_int64 * (8 + len(more)))(TRANS if transA else NO_TRANS, TRANS if transB else NO_TRANS, *shape,
                                                 lda, ldb, ldc, *more)
    return dtype.itemsize, integer, gemm, _functions()[2], numbers


class StridedBatch:
    """One geometry's batch, its numbers fixed: ``batch(a, b, out)`` multiplies arrays of that geometry (the shapes,
    strides and dtype it was made for: not checked again) into out. ``shape``: (rows, columns, inner) of each
    product; ``layoutA``, ``layoutB``: each operand's (transposed, leading dimension); ``ldc``: out's row stride;
    ``strides``: the batch strides of a, b and out in elements (0: one matrix for the whole batch); with ``outer``,
    (inner, the outer strides of a, b and out), matrix n is at (n // inner) outer strides and (n % inner) strides
    (a batch whose axes fold into two strides, not one). With a ``producer``, B[n] (A[n]) is the producer's output
    for its input at b + n strides[1] (a + n strides[0]), read as ``layoutB`` (``layoutA``) says."""

    __name__ = "gemm_batch"  # a recorded call's name in a tape's listings

    def __init__(self, dtype, shape, layoutA, layoutB, ldc, strides, count, accumulate, producer=None, outer=None):
        self.function = _functions()[0]
        inner, outerStrides = outer if outer is not None else (count, (0, 0, 0))
        self.head = _head(dtype, shape, layoutA, layoutB, ldc, *strides, count, inner, *outerStrides)
        self.numbers = self.head[-1]
        self.beta = 1.0 if accumulate else 0.0
        self.producer = producer
        self.producerAt = None if producer is None else ctypes.addressof(producer)

    def __repr__(self):
        made = "" if self.producer is None else f", made by {self.producer.function.function.__name__}"
        return f"StridedBatch({list(self.numbers)}, beta={self.beta}{made})"

    def __call__(self, a, b, out):
        self.function(*self.head, address(a), address(b), address(out), self.beta, self.producerAt)
        return out


class SplitProduct:
    """One geometry's product split among minidl's threads: ``product(a, b, out)`` multiplies matrices of that
    geometry (not checked again) into out, each thread a contiguous range of out's rows (``byRows``) or columns with
    one single-threaded gemm. ``shape``: (rows, columns, inner); ``layoutA``, ``layoutB``: each operand's
    (transposed, leading dimension); ``ldc``: out's row stride."""

    __name__ = "gemm_split"  # a recorded call's name in a tape's listings

    def __init__(self, dtype, shape, layoutA, layoutB, ldc, byRows, accumulate):
        self.function = _functions()[1]
        self.head = _head(dtype, shape, layoutA, layoutB, ldc, 0 if byRows else 1)
        self.numbers = self.head[-1]
        self.beta = 1.0 if accumulate else 0.0

    def __repr__(self):
        return f"SplitProduct({list(self.numbers)}, beta={self.beta})"  # last: 0 by rows, 1 by columns

    def __call__(self, a, b, out):
        self.function(*self.head, address(a), address(b), address(out), self.beta)
        return out


@functools.cache
def _smallFunction():
    """``minidl_small_gemm`` with its argument types, built at the first small product."""
    function = hostkernel.loadVectorLibrary(SMALL_GEMM_SOURCE, "minidl_small_gemm").minidl_small_gemm
    function.argtypes = [ctypes.c_int] + [ctypes.c_void_p] * 4
    function.restype = None
    return function


class SmallProduct(hostkernel.NumberedCall):
    """One geometry's product of few rows made by minidl's own kernel (``hostsmallgemm.cpp``), the threads sharing
    C's columns: ``product(a, b, out)``. ``shape``: (rows, columns, inner); ``layoutA``: A's (transposed, leading
    dimension); ``ldb``: B's row stride (B read by rows); ``ldc``: out's."""

    __name__ = "gemm_small"  # a recorded call's name in a tape's listings

    def __init__(self, dtype, shape, layoutA, ldb, ldc, accumulate):
        super().__init__(_smallFunction(), dtype, [*shape, layoutA[1], ldb, ldc, int(layoutA[0]), int(accumulate)])

    def __call__(self, a, b, out):
        self.function(self.real, self.numbersAt, address(a), address(b), address(out))
        return out
