"""The simulated device's array: a NumPy array kept out of reach, with CuPy's rules for crossing to the host.

As ``cupy.ndarray``: NumPy functions and implicit conversion refuse it (``numpy.asarray(a)`` and ``numpy.sum(a)`` are
TypeErrors, a NumPy array on either side of an operator too); ``get()``, ``item()``, ``tolist()``, ``bool``, ``int``
and ``float`` copy to the host and are counted as syncs; basic indexing gives views (0-d ones included: ``a[0]`` is a
0-d device array, not a number); every arithmetic operator, reduction, copy and advanced index is one launch.
"""

import collections
import contextlib
import ctypes
import numbers
import weakref

import numpy

from minidl.backend.simulated import trace
from minidl.backend.simulated.computetype import productMath
from minidl.backend.simulated.pinned import isPinned

HOST_SCALARS = (numbers.Number, numpy.generic)
REDUCTION_BLOCK = 512  # CuPy reduces with a block of threads per output (CUB over a whole array): threads counted


def _refuse(value):
    return TypeError(f"Unsupported type {type(value)}: a device array does not mix with NumPy arrays (as in CuPy); "
                     f"copy to the device with minidl.backend.toDevice, or to the host with toHost")


def wrap(host, owner=True):
    """A device array over the NumPy array ``host``; ``owner``: ``host`` is a fresh buffer of device memory."""
    if not isinstance(host, numpy.ndarray):
        host = numpy.asarray(host)
        owner = True
    array = ndarray.__new__(ndarray)
    array._host = host
    if owner:
        _allocate(host)
    return array


Buffer = collections.namedtuple("Buffer", "last serial owner")  # address past the end, number, weakref to its array

# The first address of each live buffer of device memory -> its Buffer. Read through a copy (``dict.copy`` makes no
# Python object as it goes, so the cyclic garbage collector cannot run and free a buffer while the copy is made).
_buffers = {}
_allocators = []  # the memory pools allocating now (``graphs.using_allocator``), innermost last
_count = [0]


def _allocate(host):
    """Count ``host``, a fresh buffer, as device memory while it lives (and while the pool allocating now, if any,
    lives: ``graphs.MemoryPool``)."""
    if host.nbytes:
        start = host.__array_interface__["data"][0]
        _count[0] += 1
        owner = host  # the array owning the memory (NumPy may hand a fresh result as a view of one)
        while isinstance(owner.base, numpy.ndarray):
            owner = owner.base
        _buffers[start] = Buffer(start + host.nbytes, _count[0], weakref.ref(owner))
        trace.allocated(host.nbytes)
        weakref.finalize(owner, _free, start, host.nbytes, _count[0])
        if _allocators and _allocators[-1] is not None:
            _allocators[-1]._hold(owner)


def _free(start, nbytes, serial):
    if start in _buffers and _buffers[start].serial == serial:
        del _buffers[start]
    trace.freed(nbytes)


def _holding(start, end):
    """(first address, Buffer) of the live buffer holding the addresses [start, end), or None."""
    for first, buffer in _buffers.copy().items():
        if first <= start and end <= buffer.last:
            return first, buffer
    return None


def allocationOf(address):
    """(first address, allocation number) of the live buffer holding ``address``, or None."""
    found = _holding(address, address + 1)
    return None if found is None else (found[0], found[1].serial)


def allocationsSince(serial):
    """(first address, number) of each live buffer allocated after allocation number ``serial``; with 0, all."""
    return [(first, buffer.serial) for first, buffer in _buffers.copy().items() if buffer.serial > serial]


@contextlib.contextmanager
def allocatingFrom(pool):
    """Inside the block, every fresh buffer is also held by ``pool`` (``graphs.MemoryPool``; None: by nobody)."""
    _allocators.append(pool)
    try:
        yield
    finally:
        _allocators.pop()


def allocationCount():
    """The number of the latest allocation (allocations are numbered from 1)."""
    return _count[0]


def liveBytes(first, serial, start=None, end=None):
    """The bytes [start, end) (the whole buffer by default) of allocation number ``serial`` at ``first`` as a
    writable uint8 NumPy array that keeps the buffer alive while it is used; None once the buffer is freed.

    The buffer is taken by its owner's weak reference before its address is read. A check that it lives followed by
    a view of its raw address would leave a window in which any allocation can run the cyclic garbage collector,
    free a buffer that was garbage in a reference cycle, and let the write that follows corrupt the host's heap (it
    did: a capture's restore aborted a test run once in malloc)."""
    buffer = _buffers.get(first)
    owner = buffer.owner() if buffer is not None and buffer.serial == serial else None
    if owner is None:
        return None
    start, end = first if start is None else start, buffer.last if end is None else end
    memory = (ctypes.c_char * (end - start)).from_address(start)
    memory.owner = owner
    return numpy.frombuffer(memory, dtype=numpy.uint8)


def bytesInsideOneAllocation(start, end):
    """The addresses [start, end) as ``liveBytes``, or None unless they lie inside one live buffer of device memory
    (raw pointers handed to the simulated cuBLAS are checked so: a wrong leading dimension or stride would read or
    write past an array)."""
    found = _holding(start, end)
    return None if found is None else liveBytes(found[0], found[1].serial, start, end)


def hostOf(value):
    """The NumPy array behind a device array; a host scalar as it is; a NumPy array refused."""
    if isinstance(value, ndarray):
        return value._host
    if isinstance(value, numpy.ndarray):
        raise _refuse(value)
    if isinstance(value, HOST_SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        raise TypeError(f"Unsupported type {type(value)}: pass a device array (as in CuPy)")
    raise _refuse(value)


def productOf(name, x1, x2, out=None):
    """``numpy.matmul`` or ``numpy.dot`` (``name``) of two device arrays, into ``out`` when given, with the launches
    CuPy 14 makes for it (cupy/_core/_routines_linalg.pyx), each counted:

    - a product of at most two dimensions (``dot``; ``matmul`` of matrices): one cuBLAS call in the math its dtype's
      compute type gives (``computetype``); a copy of each operand neither C- nor F-contiguous, or of another dtype
      than the result; a copy into ``out`` where ``out`` is not C-contiguous, of another dtype, or shares memory
      with an operand (the product went to a temporary);
    - a batched ``matmul`` (more than two dimensions): a copy of each operand not C-contiguous or not of the
      product's dtype (float16 is multiplied as float32: both operands cast, the result cast back, one more copy);
      where an operand is broadcast over the batch, arrays of matrix pointers built by ``cupy_mat_ptrs`` (one
      launch per batch axis for each of the two operands and the result) and a pointer-array product
      (``sgemmBatched``); else one strided batched product. CuPy passes the data type as the compute type there,
      so these products run in plain float32 ("fp32") whatever ``set_compute_type`` says.
    m x k by k x n products, 2*m*n*k FLOPs per matrix of the batch."""
    a, b = hostOf(x1), hostOf(x2)
    result = numpy.asarray(getattr(numpy, name)(a, b))
    operands = [operand for operand in (a, b) if isinstance(operand, numpy.ndarray)]
    batched = name == "matmul" and len(operands) == 2 and max(a.ndim, b.ndim) > 2
    if name == "dot" and out is not None and hostOf(out).dtype != result.dtype:
        raise ValueError("Not supported dtype combination.")
    if name == "dot" and out is not None and not hostOf(out).flags.c_contiguous:
        raise ValueError("Output array must be C-contiguous")
    computeDtype = numpy.dtype(numpy.float32) if batched and result.dtype == numpy.float16 else result.dtype
    inPlace = []  # the operands the product reads where they are (the others it copied first)
    for operand in operands:
        contiguous = operand.flags.c_contiguous or (not batched and operand.flags.f_contiguous)
        if not contiguous or operand.dtype != computeDtype:
            launch("copy", operand, operand)
        else:
            inPlace.append(operand)
    if batched:
        _batchPointers(a, b)
    k = a.shape[-1] if a.ndim else 1
    largest = max(array.size for array in operands + [result])  # cuBLAS spreads a product over the GPU
    math = ("fp64" if computeDtype == numpy.float64 else "fp32") if batched else productMath(result.dtype)
    trace.recordLaunch(name, largest, sum(array.nbytes for array in operands), result.nbytes, largest,
                       flops=2 * result.size * k, math=math)
    if out is None:
        if computeDtype != result.dtype:
            launch("copy", result, result)  # the float32 product cast back to float16
        return wrap(result)
    target = hostOf(out)
    if (not target.flags.c_contiguous or target.dtype != computeDtype
            or any(numpy.may_share_memory(target, operand) for operand in inPlace)):
        launch("copy", target, result)  # the product went to a temporary first
    target[...] = result
    return out


def _batchPointers(a, b):
    """Record the ``cupy_mat_ptrs`` launches of a batched matmul where an operand is broadcast over the batch: one
    per batch axis for each operand and the result."""
    batchAxes = max(a.ndim, b.ndim) - 2
    shapes = [(1,) * (batchAxes - max(operand.ndim - 2, 0)) + operand.shape[:-2] for operand in (a, b)]
    batch = numpy.broadcast_shapes(*shapes)
    if all(shape == batch for shape in shapes):
        return
    for _ in range(3 * batchAxes):
        launch("cupy_mat_ptrs", numpy.empty(batch, dtype=numpy.uintp))


def blockThreads(host, result):
    """The threads of a CuPy reduction of ``host`` into ``result``: a block per output element, at most one per
    input element."""
    return min(host.size, max(result.size, 1) * REDUCTION_BLOCK)


def launch(name, result, *operands, threads=None):
    """Record one launch that reads ``operands`` and writes ``result`` (NumPy arrays or scalars)."""
    arrays = [operand for operand in operands if isinstance(operand, numpy.ndarray)]
    written = result.nbytes if isinstance(result, numpy.ndarray) else 0
    size = result.size if isinstance(result, numpy.ndarray) else 1
    largest = max([array.size for array in arrays] + [size])
    trace.recordLaunch(name, size if threads is None else threads, sum(array.nbytes for array in arrays), written,
                       largest)


def _scalarResult(value):
    """A reduction's NumPy scalar as a fresh 0-d host array (CuPy returns 0-d device arrays)."""
    return numpy.asarray(value)


class Flags:
    """CuPy's ``ndarray.flags``: contiguity and ownership (device arrays are always writable)."""

    def __init__(self, host):
        self.c_contiguous = host.flags.c_contiguous
        self.f_contiguous = host.flags.f_contiguous
        self.owndata = host.base is None

    def __getitem__(self, name):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous, "OWNDATA": self.owndata}[name]


class MemoryPointer:
    """``ndarray.data``: the device address (``ptr``) of the array's first element."""

    def __init__(self, host):
        self.ptr = host.__array_interface__["data"][0]


def _binary(name, function):
    def operator(self, other):
        other = hostOf(other)
        result = function(self._host, other)
        launch(name, result, self._host, other)
        return wrap(result)

    def reflected(self, other):
        other = hostOf(other)
        result = function(other, self._host)
        launch(name, result, other, self._host)
        return wrap(result)

    def inPlace(self, other):
        other = hostOf(other)
        function(self._host, other, out=self._host, casting="same_kind")
        launch(name, self._host, self._host, other)
        return self

    return operator, reflected, inPlace


def _unary(name, function):
    def operator(self):
        result = function(self._host)
        launch(name, result, self._host)
        return wrap(result)

    return operator


def _reduction(name, function, withDtype=True):
    def method(self, axis=None, dtype=None, out=None, keepdims=False):
        if dtype is not None and not withDtype:
            raise TypeError(f"{name}() got an unexpected keyword argument 'dtype'")
        if out is not None:
            raise TypeError(f"the simulated device's {name} takes no out=")
        kwargs = {} if dtype is None else {"dtype": dtype}
        result = numpy.asarray(function(self._host, axis=axis, keepdims=keepdims, **kwargs))
        launch(name, result, self._host, threads=blockThreads(self._host, result))
        return wrap(result)

    return method


class ndarray:  # noqa: N801 - CuPy's name
    """A device array of the simulated device (see the module's docstring). Made by the module's functions
    (``cupy.zeros``, ``cupy.array``, ...), never from a NumPy array implicitly."""

    __array_ufunc__ = None  # NumPy's operators and ufuncs on a device array raise TypeError, as in CuPy
    __hash__ = None

    def __init__(self, shape, dtype=float):
        self._host = numpy.empty(shape, dtype=dtype)
        _allocate(self._host)

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
                        "NumPy array explicitly.")

    def __array_function__(self, func, types, args, kwargs):
        return NotImplemented  # numpy.sum(a), numpy.add.at(a, ...), numpy.put_along_axis(a, ...): TypeError

    # --- what it is ---
    shape = property(lambda self: self._host.shape)
    dtype = property(lambda self: self._host.dtype)
    ndim = property(lambda self: self._host.ndim)
    size = property(lambda self: self._host.size)
    nbytes = property(lambda self: self._host.nbytes)
    itemsize = property(lambda self: self._host.itemsize)
    strides = property(lambda self: self._host.strides)
    flags = property(lambda self: Flags(self._host))
    data = property(lambda self: MemoryPointer(self._host))
    base = property(lambda self: None if self._host.base is None else wrap(self._host.base, owner=False))

    def __len__(self):
        return len(self._host)

    def __repr__(self):
        trace.recordSync("deviceToHost", self.nbytes, "repr")
        return "array(" + numpy.array2string(self._host, separator=", ") + ")"

    __str__ = __repr__

    # --- to the host: every one a sync ---
    def get(self, stream=None, order="C", out=None, blocking=True):
        trace.recordSync("deviceToHost", self.nbytes, "get")
        if out is not None:
            out[...] = self._host
            return out
        return self._host.copy()

    def set(self, arr, stream=None):
        if not isinstance(arr, numpy.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        if arr.dtype != self.dtype:  # CuPy's checks, in its order: no cast, one shape, a contiguous target
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if arr.shape != self.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        if not (self._host.flags.c_contiguous or self._host.flags.f_contiguous):
            raise RuntimeError("Cannot set to non-contiguous array")
        trace.recordHostToDevice(arr.nbytes, isPinned(arr))
        self._host[...] = arr

    def item(self):
        trace.recordSync("deviceToHost", self.itemsize, "item")
        return self._host.item()

    def tolist(self):
        trace.recordSync("deviceToHost", self.nbytes, "tolist")
        return self._host.tolist()

    def _oneValue(self, what):
        if self.size != 1:
            raise TypeError(f"only size-1 device arrays can be converted to Python scalars ({what})")
        trace.recordSync("deviceToHost", self.itemsize, what)
        return self._host.reshape(()).item()

    def __bool__(self):
        if self.size != 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous.")
        return bool(self._oneValue("bool"))

    def __float__(self):
        return float(self._oneValue("float"))

    def __int__(self):
        return int(self._oneValue("int"))

    def __complex__(self):
        return complex(self._oneValue("complex"))

    def __index__(self):
        if not numpy.issubdtype(self.dtype, numpy.integer) or self.ndim != 0:
            raise TypeError("only integer 0-d device arrays can be used as an index")
        return int(self._oneValue("index"))

    def __format__(self, spec):
        if self.ndim == 0:
            return format(self._oneValue("format"), spec)
        return format(repr(self), spec)

    # --- views (no launch) ---
    def reshape(self, *shape, order="C"):
        """A view wherever strides give the new shape (NumPy's rule, as CuPy's ``_get_strides_for_nocopy_reshape``),
        else a copy (one launch)."""
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        result = self._host.reshape(shape)
        if self._host.flags.c_contiguous or numpy.may_share_memory(result, self._host):
            return wrap(result, owner=False)
        launch("copy", result, self._host)
        return wrap(result)

    def ravel(self, order="C"):
        return self.reshape(-1)

    def view(self, dtype=None):
        return wrap(self._host if dtype is None else self._host.view(dtype), owner=False)

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return wrap(self._host.transpose(*axes) if axes else self._host.transpose(), owner=False)

    T = property(lambda self: self.transpose())

    def swapaxes(self, axis1, axis2):
        return wrap(self._host.swapaxes(axis1, axis2), owner=False)

    def squeeze(self, axis=None):
        return wrap(self._host.squeeze(axis), owner=False)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[index] for index in range(len(self)))

    # --- indexing ---
    def __getitem__(self, key):
        key = _deviceIndex(key)
        _readMaskCount(key)
        if _isBasic(key):
            view = self._host[key]
            if not isinstance(view, numpy.ndarray):  # a scalar: CuPy gives a 0-d view
                view = self._host[(key if isinstance(key, tuple) else (key,)) + (Ellipsis,)]
            return wrap(view, owner=False)
        result = self._host[key]
        launch("take", result, self._host, *_indexArrays(key))
        return wrap(result)

    def __setitem__(self, key, value):
        key = _deviceIndex(key)
        value = hostOf(value)
        _readMaskCount(key)
        self._host[key] = value
        target = self._host[key] if _isBasic(key) else numpy.empty(0)
        launch("scatter" if not _isBasic(key) else "copy", target if target.size else numpy.asarray(value), value,
               *_indexArrays(key))

    # --- copies and conversions (one launch each) ---
    def copy(self, order="C"):
        result = self._host.copy()
        launch("copy", result, self._host)
        return wrap(result)

    def flatten(self, order="C"):
        return self.copy().reshape(-1)

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        if not copy and numpy.dtype(dtype) == self.dtype:
            return self
        result = self._host.astype(dtype, order="C")
        launch("astype", result, self._host)
        return wrap(result)

    def fill(self, value):
        self._host.fill(hostOf(value))
        launch("fill", self._host)

    def clip(self, min=None, max=None):  # noqa: A002 - CuPy's names
        result = numpy.clip(self._host, hostOf(min) if min is not None else None,
                            hostOf(max) if max is not None else None)
        launch("clip", result, self._host)
        return wrap(result)

    def nonzero(self):
        trace.recordSync("deviceToHost", 8, "nonzero (the count decides the output's size)")
        results = self._host.nonzero()
        for result in results:
            launch("nonzero", result, self._host)
        return tuple(wrap(result) for result in results)

    def argsort(self, axis=-1):
        result = self._host.argsort(axis=axis, kind="stable")  # as CuPy's radix sort
        launch("argsort", result, self._host)
        return wrap(result)

    sum = _reduction("sum", numpy.sum)
    prod = _reduction("prod", numpy.prod)
    mean = _reduction("mean", numpy.mean)
    var = _reduction("var", numpy.var)
    max = _reduction("max", numpy.max, withDtype=False)
    min = _reduction("min", numpy.min, withDtype=False)
    any = _reduction("any", numpy.any, withDtype=False)
    all = _reduction("all", numpy.all, withDtype=False)

    def argmax(self, axis=None, out=None, keepdims=False):
        return self._indexOf("argmax", axis, out, keepdims)

    def argmin(self, axis=None, out=None, keepdims=False):
        return self._indexOf("argmin", axis, out, keepdims)

    def _indexOf(self, name, axis, out, keepdims):
        """``argmax`` or ``argmin`` (``name``): one reduction, its result written into ``out`` when given."""
        result = numpy.asarray(getattr(self._host, name)(axis=axis, keepdims=keepdims))
        launch(name, result, self._host, threads=blockThreads(self._host, result))
        if out is None:
            return wrap(result)
        hostOf(out)[...] = result
        return out

    def dot(self, other):
        return productOf("dot", self, other)

    def __matmul__(self, other):
        return productOf("matmul", self, other)

    def __rmatmul__(self, other):
        return productOf("matmul", other, self)

    __lt__ = _binary("less", numpy.less)[0]
    __le__ = _binary("less_equal", numpy.less_equal)[0]
    __gt__ = _binary("greater", numpy.greater)[0]
    __ge__ = _binary("greater_equal", numpy.greater_equal)[0]
    __eq__ = _binary("equal", numpy.equal)[0]
    __ne__ = _binary("not_equal", numpy.not_equal)[0]
    __neg__ = _unary("negative", numpy.negative)
    __pos__ = _unary("positive", numpy.positive)
    __abs__ = _unary("absolute", numpy.absolute)
    __invert__ = _unary("invert", numpy.invert)


ARITHMETIC = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide",
              "floordiv": "floor_divide", "mod": "remainder", "pow": "power", "and": "bitwise_and",
              "or": "bitwise_or", "xor": "bitwise_xor", "lshift": "left_shift", "rshift": "right_shift"}
for _operator, _ufunc in ARITHMETIC.items():  # __add__, __radd__ and __iadd__ from numpy.add, and so on
    for _prefix, _method in zip(("", "r", "i"), _binary(_ufunc, getattr(numpy, _ufunc))):
        setattr(ndarray, f"__{_prefix}{_operator}__", _method)


def _deviceIndex(key):
    """An index with device arrays replaced by their host arrays; a NumPy array or list in it counts as a
    host-to-device copy (CuPy copies it), refused only where CuPy refuses it too (never)."""
    def one(part):
        if isinstance(part, ndarray):
            return part._host
        if isinstance(part, (numpy.ndarray, list)):
            array = numpy.asarray(part)
            trace.recordHostToDevice(array.nbytes, pinned=False)
            return array
        return part

    return tuple(one(part) for part in key) if isinstance(key, tuple) else one(key)


def _readMaskCount(key):
    """A boolean mask in an index: CuPy scans it and reads its count of True values to the host, which decides the
    shape of what is read or written (``_prepare_mask_indexing_single``): a sync, as ``nonzero``'s."""
    parts = key if isinstance(key, tuple) else (key,)
    for part in parts:
        if isinstance(part, numpy.ndarray) and part.dtype == numpy.bool_ and part.size:
            trace.recordSync("deviceToHost", 4 if part.size < 2**31 else 8,
                             "boolean mask (its count of True values decides the shape)")


def _isBasic(key):
    parts = key if isinstance(key, tuple) else (key,)
    return all(part is None or part is Ellipsis or isinstance(part, (slice, numbers.Integral)) for part in parts)


def _indexArrays(key):
    parts = key if isinstance(key, tuple) else (key,)
    return [part for part in parts if isinstance(part, numpy.ndarray)]
