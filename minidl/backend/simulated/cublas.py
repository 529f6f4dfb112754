"""The simulated device's cuBLAS: the part of CuPy's bindings (``cupy_backends.cuda.libs.cublas``) that minidl calls,
``gemmStridedBatchedEx``, with cuBLAS's own semantics on raw device pointers, so the simulated device checks the
arguments minidl works out (leading dimensions, strides, transposes) as the library would take them.

cuBLAS is column-major: a matrix X of r rows and c columns with leading dimension ld holds X[i, j] at element
i + j ld. For each p of batchCount,

    C_p = alpha op(A_p) op(B_p) + beta C_p,      X_p starting at X + p strideX (elements),

with op(X) = X (CUBLAS_OP_N) or Xᵀ (CUBLAS_OP_T), op(A) m x k, op(B) k x n, C m x n; C is not read when beta is 0.
Every matrix must lie inside one live device array (``ndarray.bytesInsideOneAllocation``): a real GPU would read or
write whatever lies past it. Products are computed in the compute type's precision: CUBLAS_COMPUTE_32F with float32
or float16 data in float32, CUBLAS_COMPUTE_32F_FAST_TF32 with each input first rounded to TF32 (10 mantissa bits),
CUBLAS_COMPUTE_64F in float64. One launch is recorded per call, in the math it runs in.
"""

import ctypes

import numpy

from minidl.backend.simulated import graphs, trace
from minidl.backend.simulated.ndarray import bytesInsideOneAllocation

CUBLAS_OP_N, CUBLAS_OP_T = 0, 1
CUBLAS_POINTER_MODE_HOST, CUBLAS_POINTER_MODE_DEVICE = 0, 1
CUBLAS_GEMM_DEFAULT = -1
CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_COMPUTE_64F = 68, 77, 70
DATA_TYPES = {0: numpy.dtype(numpy.float32), 1: numpy.dtype(numpy.float64), 2: numpy.dtype(numpy.float16)}  # CUDA_R_*
COMPUTE = {  # compute type -> (the data types it takes, the dtype of alpha and beta, the trace's math)
    CUBLAS_COMPUTE_32F: ((0, 2), numpy.float32, None),  # None: "fp32" for float32 data, "fp16" for float16
    CUBLAS_COMPUTE_32F_FAST_TF32: ((0,), numpy.float32, "tf32"),
    CUBLAS_COMPUTE_64F: ((1,), numpy.float64, "fp64"),
}
HANDLE = 1  # the one cuBLAS handle of the simulated device (``cupy.cuda.device.get_cublas_handle``)


class CUBLASError(RuntimeError):
    """cuBLAS's answer to arguments it refuses, as CuPy raises it."""

    def __init__(self, status, why):
        super().__init__(f"{status}: {why}")


_pointerMode = [CUBLAS_POINTER_MODE_HOST]


def getPointerMode(handle):
    _checkHandle(handle)
    return _pointerMode[0]


def setPointerMode(handle, mode):
    _checkHandle(handle)
    if mode not in (CUBLAS_POINTER_MODE_HOST, CUBLAS_POINTER_MODE_DEVICE):
        raise CUBLASError("CUBLAS_STATUS_INVALID_VALUE", f"pointer mode {mode}")
    _pointerMode[0] = mode


def _checkHandle(handle):
    if handle != HANDLE:
        raise CUBLASError("CUBLAS_STATUS_NOT_INITIALIZED", f"{handle} is not a cuBLAS handle")


def _hostScalar(address, dtype):
    """The host scalar at ``address`` (alpha, beta in CUBLAS_POINTER_MODE_HOST)."""
    return numpy.frombuffer((ctypes.c_char * numpy.dtype(dtype).itemsize).from_address(address), dtype=dtype)[0]


def _matrices(address, dtype, rows, cols, ld, stride, count, what):
    """The ``count`` column-major rows x cols matrices at ``address`` (leading dimension ``ld``, ``stride`` elements
    apart) as one writable NumPy view (count, rows, cols); CUBLASError if ld is too small, ValueError if they
    leave the device array they start in."""
    if ld < max(1, rows):
        raise CUBLASError("CUBLAS_STATUS_INVALID_VALUE", f"{what}: leading dimension {ld} < max(1, {rows} rows)")
    if count == 0 or rows == 0 or cols == 0:
        return numpy.zeros((count, rows, cols), dtype=dtype)
    item = dtype.itemsize
    offsets = [0, (count - 1) * stride]
    first = address + item * min(offsets)
    last = address + item * (max(offsets) + (cols - 1) * ld + rows)
    memory = bytesInsideOneAllocation(first, last)
    if memory is None:
        raise ValueError(f"simulated cuBLAS: {what} ({count} matrices {rows}x{cols}, ld {ld}, stride {stride}) "
                         f"reaches past the device array it starts in")
    memory = memory.view(dtype)
    start = (address - first) // item
    return numpy.lib.stride_tricks.as_strided(memory[start:], shape=(count, rows, cols),
                                              strides=(stride * item, item, ld * item))


def _tf32(values):
    """float32 values rounded to TF32's 10 mantissa bits (to nearest, ties away, as the tensor cores' inputs)."""
    bits = values.astype(numpy.float32).view(numpy.uint32)
    return ((bits + numpy.uint32(0x1000)) & numpy.uint32(0xFFFFE000)).view(numpy.float32)


def gemmStridedBatchedEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB,
                         beta, C, Ctype, ldc, strideC, batchCount, computeType, algo):
    _checkHandle(handle)
    if _pointerMode[0] != CUBLAS_POINTER_MODE_HOST:
        raise CUBLASError("CUBLAS_STATUS_NOT_SUPPORTED", "the simulated cuBLAS reads alpha and beta from the host")
    if computeType not in COMPUTE or Atype not in COMPUTE[computeType][0] or not Atype == Btype == Ctype:
        raise CUBLASError("CUBLAS_STATUS_NOT_SUPPORTED",
                          f"data types {Atype}, {Btype}, {Ctype} with compute type {computeType}")
    if min(m, n, k, batchCount) < 0 or transa not in (0, 1) or transb not in (0, 1) or algo != CUBLAS_GEMM_DEFAULT:
        raise CUBLASError("CUBLAS_STATUS_INVALID_VALUE", f"m={m}, n={n}, k={k}, batchCount={batchCount}, "
                                                         f"transa={transa}, transb={transb}, algo={algo}")
    alphaValue, betaValue = _hostScalar(alpha, COMPUTE[computeType][1]), _hostScalar(beta, COMPUTE[computeType][1])
    _gemm(transa, transb, m, n, k, alphaValue, A, Atype, lda, strideA, B, ldb, strideB, betaValue, C, ldc, strideC,
          batchCount, computeType)


@graphs.work
def _gemm(transa, transb, m, n, k, alphaValue, A, Atype, lda, strideA, B, ldb, strideB, betaValue, C, ldc, strideC,
          batchCount, computeType):
    """The product itself, alpha and beta read (as cuBLAS reads host scalars when called, a captured product keeps
    the values it was called with)."""
    dtype, (_, scalarType, math) = DATA_TYPES[Atype], COMPUTE[computeType]
    a = _matrices(A, dtype, *((m, k) if transa == CUBLAS_OP_N else (k, m)), lda, strideA, batchCount, "A")
    b = _matrices(B, dtype, *((k, n) if transb == CUBLAS_OP_N else (n, k)), ldb, strideB, batchCount, "B")
    c = _matrices(C, dtype, m, n, ldc, strideC, batchCount, "C")
    if strideC < m + (n - 1) * ldc and batchCount > 1 and m * n:  # undefined in cuBLAS: refused here
        raise ValueError(f"simulated cuBLAS: the {batchCount} matrices C overlap (stride {strideC})")
    work = numpy.float64 if scalarType == numpy.float64 else numpy.float32
    opA = a.astype(work) if transa == CUBLAS_OP_N else a.transpose(0, 2, 1).astype(work)
    opB = b.astype(work) if transb == CUBLAS_OP_N else b.transpose(0, 2, 1).astype(work)
    if computeType == CUBLAS_COMPUTE_32F_FAST_TF32:
        opA, opB = _tf32(opA), _tf32(opB)
    product = alphaValue * numpy.matmul(opA, opB)
    if betaValue != 0:
        product += betaValue * c.astype(work)
    c[...] = product.astype(dtype)
    readA, readB = (x[:1] if stride == 0 else x for x, stride in ((a, strideA), (b, strideB)))  # read once
    largest = max(readA.size, readB.size, c.size)  # cuBLAS spreads a product over the GPU
    trace.recordLaunch("gemmStridedBatched", largest, readA.nbytes + readB.nbytes + (c.nbytes if betaValue else 0),
                       c.nbytes, largest, flops=2 * m * n * k * batchCount,
                       math=math or ("fp16" if dtype == numpy.float16 else "fp32"))
