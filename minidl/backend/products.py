"""``matmul(a, b, out=None, accumulate=False)``: matrix products over a batch, one cuBLAS launch each on a GPU.

    out[..., i, j] = Σ_k a[..., i, k] b[..., k, j]        (out += that with ``accumulate``)

over the batch axes of a and b broadcast together (an operand of two axes is the same matrix for the whole batch).
On the CPU, float32 and float64 products are made on minidl's threads with NumPy's gemm run single-threaded
(``minidl.backend.hostblas``), worked out once per geometry: a batch of matrices read in place (a strided batch, as
on a GPU below) shared among the threads, each multiplying whole matrices (``StridedBatch``; 1.3-1.9x faster for a
convolution's products per image, with NumPy's bits), and a product of two matrices split among them in rows or
columns (``SplitProduct``), so that the BLAS's own threads, which spin long after a product, never run beside
minidl's; a product of few rows (an LSTM step's) is made by minidl's own kernel instead, the threads sharing its
columns (``SmallProduct``). The rest (small, float16, operands read neither by rows nor by columns) is NumPy's matmul.

On a GPU CuPy's own matmul of more than two axes copies every operand that is not C-contiguous (a transposed view of
W or of col), casts float16 operands to float32 and the result back, and builds arrays of matrix pointers where an
operand is broadcast (a launch per batch axis for each operand and the result), all before one product in plain
float32: Conv2D's three products took 20 launches a step. Here each product is one call of cuBLAS's
``cublasGemmStridedBatchedEx``: a transposed view is read through cuBLAS's transpose flag, a slice of rows through
its leading dimension, a broadcast operand through a batch stride of 0; float16 is multiplied on tensor cores with
float32 sums, float32 exactly or through TF32 as ``allowTF32`` says, float64 in float64. ``accumulate`` passes beta
= 1: the product is added into ``out`` by the same launch. Batch axes whose strides do not fold into one (a grouped
convolution's weights, broadcast over its images) take one call per index of the other axes, the longest axis
batched. An operand whose last two axes are neither rows nor columns of stride 1 is copied first (one launch). The
calls are worked out at the first product of a geometry (the operands' and out's shapes, strides and dtypes,
accumulate, TF32) and kept (``ProductPlan``): a later product of it makes the same calls on its own arrays, 6-9 µs
of Python on the simulated device instead of 20-31.

cuBLAS is column-major; a row-major C = A B is computed as Cᵀ = Bᵀ Aᵀ: a matrix whose rows have stride 1 is, to
cuBLAS, its own transpose with the row stride as its leading dimension.
"""

import functools
import itertools

import numpy

from minidl.backend import hostblas
from minidl.backend.device import cublasBindings, isDeviceArray, isGpu, xp
from minidl.backend.hostblas import SmallProduct, SplitProduct, StridedBatch, gemms
from minidl.backend.hostkernel import poolThreads
from minidl.backend.tape import Recorder, plain
from minidl.backend.tensorcores import tf32Allowed
from minidl.errors import BackendError

CPU_TYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))  # what hostblas multiplies
CUDA_TYPES = {numpy.dtype(numpy.float32): 0, numpy.dtype(numpy.float64): 1, numpy.dtype(numpy.float16): 2}  # CUDA_R_*


def matmul(a, b, out=None, accumulate=False):
    """a @ b into ``out`` (a new array when None; sharing memory with a or b, it is refused), or added to ``out``
    with ``accumulate``; see the module."""
    if isGpu:
        geometry = _geometry(a, b, out, accumulate)
        plan = _plans.get(geometry)
        if plan is not None:
            if out is not None:
                _checkApart(a, b, out)
            return plan.run(a, b, out)
        hosts = [name for name, array in (("a", a), ("b", b), ("out", out)) if array is not None
                 and not isDeviceArray(array)]
        if hosts:
            raise BackendError(f"matmul on a GPU takes device arrays, got {', '.join(hosts)} in host memory: copy "
                               f"them with minidl.backend.toDevice")
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2] or a.dtype != b.dtype:
        raise BackendError(f"matmul takes two matrices or batches of matrices of one dtype, (..., M, K) and (..., K, "
                           f"N), got {a.shape} {a.dtype} and {b.shape} {b.dtype}")
    if out is not None or accumulate:
        _checkOut(a, b, out)
        _checkApart(a, b, out)
    if not isGpu:
        made = _hostProduct(a, b, out, accumulate)
        if made is not None:
            return made
        if accumulate:
            out += xp.matmul(a, b)
            return out
        return xp.matmul(a, b, out=out)
    if a.dtype not in CUDA_TYPES:
        raise BackendError(f"matmul on a GPU takes float16, float32 or float64 matrices, got {a.dtype}")
    out = xp.empty(_shape(a, b), dtype=a.dtype) if out is None else out
    if out.size and a.shape[-1] == 0 and not accumulate:
        out.fill(0)
    elif out.size and a.shape[-1]:
        _gemm(a, b, out, accumulate, geometry)
    return out


def columnSums(rows):
    """Σ over the rows of a matrix, one value per column, in a new array. On the CPU, for float32 and float64, the
    product of a row of ones with the matrix, shared among minidl's threads where it is large (NumPy's sum over the
    rows walks one thread: (2048, 384) 171 µs against 64, (2048, 128) 57 against 16), its sums in the gemm's order;
    else xp's sum."""
    if isGpu or rows.dtype not in CPU_TYPES:
        return rows.sum(axis=0)
    return matmul(_onesRow(rows.shape[0], rows.dtype), rows).reshape(-1)


@functools.cache
def _onesRow(count, dtype):
    """A row of ``count`` ones on the host: ``columnSums``'s left operand, never written and kept for good (a tape
    holds it as a constant of the step: a row made anew would change the step); made by NumPy, not by ``xp``, so
    that a tape recording the first sum takes it for a constant, not for an array of the step."""
    return numpy.ones((1, count), dtype=dtype)


def cpuContiguous(operand):
    """A product's transposed operand as it multiplies fastest: on the CPU a C-contiguous copy (NumPy's OpenBLAS
    multiplied small matrices by a transposed view 1.3-1.6x slower: 32x128 by 128x512 50-52 µs against 36-37, made
    once for an LSTM layer's 64 steps); on a GPU the view itself, which cuBLAS reads through its transpose flag."""
    return operand if isGpu else xp.ascontiguousarray(operand)


def cpuLaidOut(shape, order, dtype):
    """An empty array of ``shape`` for a product's ``out`` that is read afterwards with its axes in ``order``
    (``array.transpose(order)``). On the CPU its memory holds the axes in that order, so the reading is a view:
    NumPy's products write a strided ``out`` in place (attention's ∂q, ∂k, ∂v into the rows of ∂qkv: a 3 MB copy
    that took 0.9 ms of a transformer block's step). On a GPU it is C-contiguous: one cuBLAS launch batches over
    one stride, and the reading copies (one launch)."""
    if isGpu:
        return xp.empty(shape, dtype=dtype)
    return xp.empty(tuple(shape[axis] for axis in order), dtype=dtype).transpose(numpy.argsort(order))


def _shape(a, b):
    """The shape of a @ b: the batch axes broadcast, then (M, N)."""
    if a.ndim == b.ndim == 2:
        return a.shape[0], b.shape[1]
    return (*numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], b.shape[-1])


def _checkOut(a, b, out):
    """BackendError unless ``out`` (None with accumulate: refused) has the shape and dtype of a @ b and is
    writable."""
    if out is None:
        raise BackendError("matmul with accumulate adds into out: pass out")
    if out.shape != _shape(a, b) or out.dtype != a.dtype:
        raise BackendError(f"matmul's out must be {_shape(a, b)} {a.dtype}, got {out.shape} {out.dtype}")
    if not getattr(out.flags, "writeable", True):  # device arrays are always writable
        raise BackendError("matmul's out is read-only: pass a writable array")


def _checkApart(a, b, out):
    """BackendError where ``out`` shares memory with ``a`` or ``b``: a gemm writes out while it reads them (cuBLAS,
    the CPU's split product), NumPy's matmul alone would have buffered. On a GPU their address ranges must not meet
    (CuPy's exact answer would read the device); on the CPU no element may be common (NumPy's exact answer, asked
    only where the ranges meet)."""
    for name, operand in (("a", a), ("b", b)):
        if isGpu:
            shared = xp.may_share_memory(out, operand)
        else:
            out, operand = plain(out), plain(operand)
            shared = numpy.may_share_memory(out, operand) and numpy.shares_memory(out, operand)
        if shared:
            raise BackendError(f"matmul's out must not share memory with a or b (it does with {name}): the product "
                               f"would read what it has already written; pass another array")


def _layout(array):
    """(array, transposed, leading dimension) of the last two axes as cuBLAS reads them (``_readAs``); copied first
    when they read neither way."""
    laid = _readAs(array)
    return (array, *laid) if laid is not None else _layout(xp.ascontiguousarray(array))


def _readAs(array):
    """(transposed, leading dimension) of the last two axes as a BLAS reads them, or None: rows of stride 1
    (row-major, the row stride leading) or columns of stride 1 (``transposed``, the column stride leading); None
    for neither, a negative stride or a stride of a fraction of an element."""
    rows, cols = array.shape[-2:]
    if min(array.strides) < 0 or any(stride % array.itemsize for stride in array.strides):
        return None
    rowStride, colStride = (stride // array.itemsize for stride in array.strides[-2:])
    if (colStride == 1 or cols == 1) and (rows == 1 or rowStride >= cols):
        return False, rowStride if rows > 1 else cols
    if (rowStride == 1 or rows == 1) and (cols == 1 or colStride >= rows):
        return True, colStride if cols > 1 else rows
    return None


def _batchStrides(array, batch):
    """The element strides of ``array`` along the batch axes ``batch`` (0 where it is broadcast)."""
    own = array.shape[:-2]
    strides = [0] * (len(batch) - len(own)) + [stride // array.itemsize for stride in array.strides[:-2]]
    return [stride if extent > 1 else 0 for stride, extent in zip(strides, (1,) * (len(batch) - len(own)) + own)]


def _folded(batch, strides):
    """The one stride that walks ``batch`` (row-major) for every operand's strides, or None where one does not."""
    axes = [axis for axis, extent in enumerate(batch) if extent > 1]
    pairs = list(zip(axes, axes[1:]))
    if all(operand[outer] == operand[inner] * batch[inner] for operand in strides for outer, inner in pairs):
        return [operand[axes[-1]] if axes else 0 for operand in strides]
    return None


def _hostProduct(a, b, out, accumulate):
    """On the CPU, a product made on minidl's threads (``minidl.backend.hostblas``): out, or None where NumPy's
    matmul makes it. A batch is shared among the threads (``_stridedBatch``), a product of two matrices (or a batch
    of one) split among them (``_splitProduct``); that call is worked out at the first product of a geometry and
    kept, and a recording tape records it."""
    geometry = _geometry(a, b, out, accumulate)
    made = _hostPlans.get(geometry)
    if made is None:
        if len(_hostPlans) >= PLANS_KEPT:
            _hostPlans.clear()
        plan = _splitProduct if numpy.prod(_shape(a, b)[:-2], dtype=int) == 1 else _stridedBatch
        made = _hostPlans[geometry] = plan(a, b, out, accumulate) or False
    if made is False:
        return None
    return runBatch(made, a, b, xp.empty(_shape(a, b), dtype=a.dtype) if out is None else out)


def runBatch(batch, a, b, out):
    """Run ``batch``, a StridedBatch or SplitProduct (``minidl.backend.hostblas``), on a, b and out (made through
    ``xp``: a recording tape sees it made), and return out; a recording tape records the call."""
    a, b, written = plain(a), plain(b), plain(out)
    batch(a, b, written)
    if Recorder.tape is not None and not Recorder.paused:
        Recorder.tape.add(batch, (a, b, written), writes=written)
    return out


def _stridedBatch(a, b, out, accumulate):
    """The StridedBatch of this product (out None: made C-contiguous by ``_hostProduct``), or None where NumPy's matmul
    makes it: no batch call here (``hostblas.gemms``) or one thread, fewer multiply-adds than
    ``hostblas.BATCH_FROM``, a dtype other than float32 and float64, an empty product, an operand read neither by
    rows nor by columns, out's rows not of stride 1, batch strides that do not fold into one or two, or a batch that the
    threads would share unevenly (fewer than 4 matrices a thread, not a multiple of the threads: 3 matrices on 2
    threads would take 2 matrices' time, where NumPy's matmul splits each in two)."""
    if a.dtype not in gemms() or a.dtype != b.dtype or 0 in (a.shape[-2], a.shape[-1], b.shape[-1]):
        return None
    shape = _shape(a, b)
    batch = shape[:-2]
    count, threads = int(numpy.prod(batch)), poolThreads()
    laidA, laidB = _readAs(a), _readAs(b)
    laidOut = (False, shape[-1]) if out is None else _readAs(out)
    if (threads < 2 or (count % threads and count < 4 * threads) or count * shape[-2] * shape[-1] * a.shape[-1] <
            hostblas.BATCH_FROM or None in (laidA, laidB, laidOut) or laidOut[0]):
        return None
    outStrides = (numpy.cumprod((1, *reversed(batch)))[-2::-1] * shape[-2] * shape[-1] if out is None else
                  _batchStrides(out, batch))
    strides = [_batchStrides(a, batch), _batchStrides(b, batch),
               [int(stride) if extent > 1 else 0 for stride, extent in zip(outStrides, batch)]]
    levels = _foldedInTwo(batch, strides)
    if levels is None:
        return None
    inner, innerStrides, outerStrides = levels
    return StridedBatch(a.dtype, (shape[-2], shape[-1], a.shape[-1]), laidA, laidB, laidOut[1], innerStrides, count,
                        accumulate, outer=(inner, outerStrides))


def _foldedInTwo(batch, strides):
    """(the matrices of the inner level, each operand's inner stride, each operand's outer stride) that walk
    ``batch`` (row-major): one level where every operand's batch axes fold into one stride (the outer strides 0),
    else the axes before a split and those after it, each folding into one (attention's ∂q, ∂k, ∂v written into
    the rows of ∂qkv: the heads' stride folds, the images' does not); None where neither does."""
    folded = _folded(batch, strides)
    if folded is not None:
        return int(numpy.prod(batch)), folded, [0, 0, 0]
    axes = [axis for axis, extent in enumerate(batch) if extent > 1]
    for split in axes[1:]:
        outerBatch = [extent if axis < split else 1 for axis, extent in enumerate(batch)]
        innerBatch = [extent if axis >= split else 1 for axis, extent in enumerate(batch)]
        outer, inner = _folded(outerBatch, strides), _folded(innerBatch, strides)
        if outer is not None and inner is not None:
            return int(numpy.prod(innerBatch)), inner, outer
    return None


def _splitProduct(a, b, out, accumulate):
    """The SplitProduct of a product of two matrices, or of a batch of one (out None: made C-contiguous by
    ``_hostProduct``), or None where NumPy's matmul makes it: no gemm here (``hostblas.gemms``) or one thread, a
    dtype other than float32 and float64, fewer multiply-adds than ``hostblas.SPLIT_FROM``, an operand or out read
    neither by rows nor by columns, or out's rows not of stride 1. The threads take rows where out has at least as
    many rows as columns or 128 rows or more, else columns; a product of ``SMALL_ROWS`` rows whose B is read by rows
    is minidl's own kernel's (a ``SmallProduct``)."""
    (rows, inner), cols = a.shape[-2:], b.shape[-1]
    if (a.dtype not in gemms() or a.dtype != b.dtype or poolThreads() < 2 or
            rows * cols * inner < hostblas.SPLIT_FROM):
        return None
    laidA, laidB = _readAs(a), _readAs(b)
    laidOut = (False, cols) if out is None else _readAs(out)
    if None in (laidA, laidB, laidOut) or laidOut[0]:
        return None
    if SMALL_ROWS[0] <= rows <= SMALL_ROWS[1] and cols >= SMALL_COLUMNS_FROM and not laidB[0]:
        return SmallProduct(a.dtype, (rows, cols, inner), laidA, laidB[1], laidOut[1], accumulate)
    return SplitProduct(a.dtype, (rows, cols, inner), laidA, laidB, laidOut[1], rows >= min(cols, 128), accumulate)


def _geometry(a, b, out, accumulate):
    """What a product's cuBLAS calls depend on besides its arrays' addresses: the operands' and out's (None: made
    by matmul) types, shapes, strides and dtypes, accumulate, and whether float32 may use TF32."""
    where = None if out is None else (type(out), out.shape, out.strides, out.dtype)
    return (type(a), a.shape, a.strides, a.dtype, type(b), b.shape, b.strides, b.dtype, where, accumulate,
            tf32Allowed())


def _gemm(a, b, out, accumulate, geometry):
    """out (+)= a @ b through cublasGemmStridedBatchedEx, out's rows of stride 1; its ProductPlan kept for the
    later products of this ``geometry`` (``_geometry``) where neither operand had to be copied first."""
    (laidA, transA, lda), (laidB, transB, ldb) = _layout(a), _layout(b)
    rows, cols = out.shape[-2:]
    rowStride = out.strides[-2] // out.itemsize
    if (out.strides[-1] != out.itemsize and cols > 1) or (rows > 1 and rowStride < cols) or min(out.strides) < 0:
        raise BackendError(f"matmul on a GPU writes rows of stride 1 that do not overlap, got out of shape {out.shape}"
                           f" and strides {out.strides}")
    ldc = rowStride if rows > 1 else cols
    batch = out.shape[:-2]
    strides = [_batchStrides(array, batch) for array in (laidA, laidB, out)]
    folded = _folded(batch, strides)
    if folded is not None:
        calls = [(0, 0, 0, folded, int(numpy.prod(batch)))]
    else:
        along = max(range(len(batch)), key=lambda axis: batch[axis])  # batched; the other axes one call per index
        others = [range(extent) if axis != along else range(1) for axis, extent in enumerate(batch)]
        calls = [(*[sum(i * stride for i, stride in zip(index, operand)) for operand in strides],
                  [operand[along] for operand in strides], batch[along]) for index in itertools.product(*others)]
    plan = ProductPlan(out.shape, a.dtype, (transA, lda), (transB, ldb), ldc, calls, accumulate)
    if laidA is a and laidB is b:
        if len(_plans) >= PLANS_KEPT:
            _plans.clear()
        _plans[geometry] = plan
    plan.run(laidA, laidB, out)


# Products of SMALL_ROWS rows (at least SMALL_COLUMNS_FROM columns, B read by rows) made by minidl's own kernel
# (hostblas.SmallProduct): an LSTM step's 32x128 by 128x512 26 µs against 37 split in two for OpenBLAS, 32x512 by
# 512x128 26 against 38 (2 cores); the digits MLP's step was fastest with 64 rows at most (its products of 128 and 256
# rows are OpenBLAS's: its packing of A pays there), and a row or two is left to OpenBLAS's gemv-like kernels.
SMALL_ROWS = (4, 64)
SMALL_COLUMNS_FROM = 64
PLANS_KEPT = 4096  # geometries whose plans are kept; a program of ever new shapes starts the table afresh
_plans = {}  # a product's geometry (_geometry) -> its ProductPlan, on a GPU
_hostPlans = {}  # on the CPU, a product's geometry -> its StridedBatch or SplitProduct, or False: NumPy's matmul


class ProductPlan:
    """One product's cuBLAS calls, worked out at the first product of its geometry: each call's element offsets
    into a, b and out, batch strides and count, the transpose flags and leading dimensions, the data and compute
    types. ``run(a, b, out)`` makes them on these arrays (out made when None) and returns out: a later product of
    the geometry skips matmul's checks, the layouts and the batch's folding (20-31 µs of Python a product on the
    simulated device before, measured with cuBLAS's call made a no-op)."""

    def __init__(self, outShape, dtype, layoutA, layoutB, ldc, calls, accumulate):
        self.outShape, self.dtype, self.calls = outShape, dtype, calls
        (self.transA, self.lda), (self.transB, self.ldb), self.ldc = layoutA, layoutB, ldc
        scalar = numpy.float64 if dtype == numpy.float64 else numpy.float32
        self.one, self.beta = numpy.ones((), dtype=scalar), numpy.array(1 if accumulate else 0, dtype=scalar)
        self.alphaAt, self.betaAt = self.one.ctypes.data, self.beta.ctypes.data  # host scalars, kept by the plan
        self.dataType = CUDA_TYPES[dtype]
        self.itemsize = numpy.dtype(dtype).itemsize
        cublas = cublasBindings()  # TF32 or not is part of the geometry: the compute type is the plan's
        self.compute = (cublas.CUBLAS_COMPUTE_64F if dtype == numpy.float64 else
                        cublas.CUBLAS_COMPUTE_32F_FAST_TF32 if dtype == numpy.float32 and tf32Allowed() else
                        cublas.CUBLAS_COMPUTE_32F)

    def run(self, a, b, out):
        out = xp.empty(self.outShape, dtype=self.dtype) if out is None else out
        cublas = cublasBindings()
        handle = xp.cuda.device.get_cublas_handle()
        m, n, k, size = out.shape[-1], out.shape[-2], a.shape[-1], self.itemsize
        mode = cublas.getPointerMode(handle)
        cublas.setPointerMode(handle, cublas.CUBLAS_POINTER_MODE_HOST)
        try:
            for offsetA, offsetB, offsetC, strides, count in self.calls:
                cublas.gemmStridedBatchedEx(
                    handle, int(self.transB), int(self.transA), m, n, k, self.alphaAt,
                    b.data.ptr + offsetB * size, self.dataType, self.ldb, strides[1],
                    a.data.ptr + offsetA * size, self.dataType, self.lda, strides[0],
                    self.betaAt, out.data.ptr + offsetC * size, self.dataType, self.ldc, strides[2],
                    count, self.compute, cublas.CUBLAS_GEMM_DEFAULT)
        finally:
            cublas.setPointerMode(handle, mode)
        return out
