"""The functions of the simulated ``cupy`` namespace: the part of CuPy 14's API that minidl calls on the device,
with CuPy's signatures (tests/backend/test_simulated_api.py holds each name against the real package).

Creation from host data (``array``, ``asarray``, ``ascontiguousarray`` of a NumPy array) is a host-to-device copy;
each computing function is one launch (a product one cuBLAS call with its FLOPs); views launch nothing.
"""

import builtins

import numpy

from minidl.backend.simulated import trace
from minidl.backend.simulated.computetype import productMath
from minidl.backend.simulated.ndarray import hostOf, launch, ndarray, productOf, wrap
from minidl.backend.simulated.pinned import isPinned


def _fromHost(obj, dtype):
    host = numpy.array(obj, dtype=dtype, copy=True, order="C")
    pinned = isinstance(obj, numpy.ndarray) and isPinned(obj)
    trace.recordHostToDevice(host.nbytes, pinned)
    return wrap(host)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, blocking=False):
    """A device copy of a device or host array (a host-to-device copy for host data)."""
    if isinstance(obj, ndarray):
        if not copy and (dtype is None or numpy.dtype(dtype) == obj.dtype):
            return obj
        return obj.astype(obj.dtype if dtype is None else dtype) if dtype is not None else obj.copy()
    return _fromHost(obj, dtype)


def asarray(a, dtype=None, order=None, copy=None, blocking=False):
    """``a`` itself when it is a device array of that dtype, else a device copy."""
    if isinstance(a, ndarray):
        return a if dtype is None or numpy.dtype(dtype) == a.dtype else a.astype(dtype)
    return _fromHost(a, dtype)


def ascontiguousarray(a, dtype=None):
    """``a`` when it is C-contiguous (and of ``dtype``), else a C-contiguous copy (one launch)."""
    if not isinstance(a, ndarray):
        return _fromHost(a, dtype)
    if a.flags.c_contiguous and (dtype is None or numpy.dtype(dtype) == a.dtype):
        return a
    result = numpy.ascontiguousarray(a._host, dtype=dtype)
    launch("copy", result, a._host)
    return wrap(result)


def asfortranarray(a, dtype=None):
    """``a`` when it is Fortran-ordered (and of ``dtype``), else a Fortran-ordered copy (one launch)."""
    if a.flags.f_contiguous and (dtype is None or numpy.dtype(dtype) == a.dtype):
        return a
    result = numpy.asfortranarray(a._host, dtype=dtype)
    launch("copy", result, a._host)
    return wrap(result)


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """The host copy of a device array (a sync); host data as it is."""
    if isinstance(a, ndarray):
        return a.get(out=out)
    return numpy.asarray(a)


NAMESPACE = {}  # "cupy": the device's cupy namespace, which the package makes from this module's functions


def get_array_module(*args):  # noqa: N802 - CuPy's name
    return NAMESPACE["cupy"] if builtins.any(isinstance(arg, ndarray) for arg in args) else numpy


def _fresh(name, host):
    launch(name, host)
    return wrap(host)


def empty(shape, dtype=float, order="C"):
    return wrap(numpy.empty(shape, dtype=dtype))


def zeros(shape, dtype=float, order="C"):
    return _fresh("fill", numpy.zeros(shape, dtype=dtype))


def ones(shape, dtype=float, order="C"):
    return _fresh("fill", numpy.ones(shape, dtype=dtype))


def full(shape, fill_value, dtype=None, order="C"):
    return _fresh("fill", numpy.full(shape, hostOf(fill_value), dtype=dtype))


def _likeShape(a, dtype, shape):
    return (a.shape if shape is None else shape), (a.dtype if dtype is None else dtype)


def empty_like(prototype, dtype=None, order="K", subok=None, shape=None):
    shape, dtype = _likeShape(prototype, dtype, shape)
    return empty(shape, dtype)


def zeros_like(a, dtype=None, order="K", subok=None, shape=None):
    shape, dtype = _likeShape(a, dtype, shape)
    return zeros(shape, dtype)


def ones_like(a, dtype=None, order="K", subok=None, shape=None):
    shape, dtype = _likeShape(a, dtype, shape)
    return ones(shape, dtype)


def full_like(a, fill_value, dtype=None, order="K", subok=None, shape=None):
    shape, dtype = _likeShape(a, dtype, shape)
    return full(shape, fill_value, dtype)


def arange(start, stop=None, step=1, dtype=None):
    return _fresh("arange", numpy.arange(start, stop, step, dtype=dtype) if stop is not None
                  else numpy.arange(start, dtype=dtype))


def _ufunc(name, function):
    def call(*args, out=None, dtype=None):
        hosts = [hostOf(arg) for arg in args]
        if out is not None:
            function(*hosts, out=hostOf(out), **({} if dtype is None else {"dtype": dtype}))
            launch(name, out._host, *hosts)
            return out
        result = numpy.asarray(function(*hosts, **({} if dtype is None else {"dtype": dtype})))
        launch(name, result, *hosts)
        return wrap(result)

    call.__name__ = name
    return call


add = _ufunc("add", numpy.add)
subtract = _ufunc("subtract", numpy.subtract)
multiply = _ufunc("multiply", numpy.multiply)
true_divide = _ufunc("true_divide", numpy.true_divide)
floor_divide = _ufunc("floor_divide", numpy.floor_divide)
remainder = _ufunc("remainder", numpy.remainder)
mod = _ufunc("mod", numpy.mod)
power = _ufunc("power", numpy.power)
maximum = _ufunc("maximum", numpy.maximum)
minimum = _ufunc("minimum", numpy.minimum)
fmax = _ufunc("fmax", numpy.fmax)
fmin = _ufunc("fmin", numpy.fmin)
sqrt = _ufunc("sqrt", numpy.sqrt)
cbrt = _ufunc("cbrt", numpy.cbrt)
square = _ufunc("square", numpy.square)
reciprocal = _ufunc("reciprocal", numpy.reciprocal)
absolute = _ufunc("absolute", numpy.absolute)
fabs = _ufunc("fabs", numpy.fabs)
sign = _ufunc("sign", numpy.sign)
negative = _ufunc("negative", numpy.negative)
positive = _ufunc("positive", numpy.positive)
exp = _ufunc("exp", numpy.exp)
exp2 = _ufunc("exp2", numpy.exp2)
expm1 = _ufunc("expm1", numpy.expm1)
log = _ufunc("log", numpy.log)
log2 = _ufunc("log2", numpy.log2)
log10 = _ufunc("log10", numpy.log10)
log1p = _ufunc("log1p", numpy.log1p)
sin = _ufunc("sin", numpy.sin)
cos = _ufunc("cos", numpy.cos)
tan = _ufunc("tan", numpy.tan)
arcsin = _ufunc("arcsin", numpy.arcsin)
arccos = _ufunc("arccos", numpy.arccos)
arctan = _ufunc("arctan", numpy.arctan)
arctan2 = _ufunc("arctan2", numpy.arctan2)
sinh = _ufunc("sinh", numpy.sinh)
cosh = _ufunc("cosh", numpy.cosh)
tanh = _ufunc("tanh", numpy.tanh)
arcsinh = _ufunc("arcsinh", numpy.arcsinh)
arccosh = _ufunc("arccosh", numpy.arccosh)
arctanh = _ufunc("arctanh", numpy.arctanh)
hypot = _ufunc("hypot", numpy.hypot)
floor = _ufunc("floor", numpy.floor)
ceil = _ufunc("ceil", numpy.ceil)
rint = _ufunc("rint", numpy.rint)
trunc = _ufunc("trunc", numpy.trunc)
isfinite = _ufunc("isfinite", numpy.isfinite)
isnan = _ufunc("isnan", numpy.isnan)
isinf = _ufunc("isinf", numpy.isinf)
signbit = _ufunc("signbit", numpy.signbit)
copysign = _ufunc("copysign", numpy.copysign)
nextafter = _ufunc("nextafter", numpy.nextafter)
equal = _ufunc("equal", numpy.equal)
not_equal = _ufunc("not_equal", numpy.not_equal)
less = _ufunc("less", numpy.less)
less_equal = _ufunc("less_equal", numpy.less_equal)
greater = _ufunc("greater", numpy.greater)
greater_equal = _ufunc("greater_equal", numpy.greater_equal)
logical_and = _ufunc("logical_and", numpy.logical_and)
logical_or = _ufunc("logical_or", numpy.logical_or)
logical_xor = _ufunc("logical_xor", numpy.logical_xor)
logical_not = _ufunc("logical_not", numpy.logical_not)
bitwise_and = _ufunc("bitwise_and", numpy.bitwise_and)
bitwise_or = _ufunc("bitwise_or", numpy.bitwise_or)
bitwise_xor = _ufunc("bitwise_xor", numpy.bitwise_xor)
invert = _ufunc("invert", numpy.invert)
left_shift = _ufunc("left_shift", numpy.left_shift)
right_shift = _ufunc("right_shift", numpy.right_shift)
divide = true_divide
abs = absolute  # noqa: A001 - CuPy's name

def where(condition, x=None, y=None):
    if x is None and y is None:
        return condition.nonzero()
    hosts = [hostOf(condition), hostOf(x), hostOf(y)]
    result = numpy.where(*hosts)
    launch("where", result, *hosts)
    return wrap(result)


def clip(a, a_min, a_max, out=None):
    if out is None:
        return a.clip(a_min, a_max)
    host = hostOf(a)
    numpy.clip(host, hostOf(a_min) if a_min is not None else None, hostOf(a_max) if a_max is not None else None,
               out=hostOf(out))
    launch("clip", out._host, host)
    return out


def _reductionFunction(method):
    def call(a, axis=None, dtype=None, out=None, keepdims=False):
        return getattr(a, method)(axis=axis, dtype=dtype, out=out, keepdims=keepdims)

    call.__name__ = method
    return call


def _comparingFunction(method):
    def call(a, axis=None, out=None, keepdims=False):
        return getattr(a, method)(axis=axis, out=out, keepdims=keepdims)

    call.__name__ = method
    return call


sum = _reductionFunction("sum")  # noqa: A001 - CuPy's name
prod = _reductionFunction("prod")
mean = _reductionFunction("mean")
amax = max = _comparingFunction("max")  # noqa: A001
amin = min = _comparingFunction("min")  # noqa: A001
any = _comparingFunction("any")  # noqa: A001
all = _comparingFunction("all")  # noqa: A001


def argmax(a, axis=None, dtype=None, out=None, keepdims=False):
    return a.argmax(axis=axis, out=out, keepdims=keepdims)


def matmul(x1, x2, out=None):
    return productOf("matmul", x1, x2, out)


def dot(a, b, out=None):
    return productOf("dot", a, b, out)


def vdot(a, b):
    a, b = hostOf(a), hostOf(b)
    result = numpy.asarray(numpy.vdot(a, b))
    trace.recordLaunch("vdot", a.size, a.nbytes + b.nbytes, result.nbytes, a.size, flops=2 * a.size)
    return wrap(result)


def _gathering(name, function):
    """``concatenate`` or ``stack`` with the work CuPy 14 does (``_concatenate``): up to 8 arrays, or larger ones, one
    copy launch per array into its slice of the result; more than 8 arrays of the result's dtype and under 2 MiB
    each on average, one kernel reading them through an array of their pointers, which CuPy copies from the host
    (pageable) first, with their strides and offsets as two more copies unless all are C-contiguous and of one
    length along the axis."""

    def call(tup, axis=0, out=None, dtype=None):
        hosts = [hostOf(array) for array in tup]
        result = function(hosts, axis=axis)
        if dtype is not None:
            result = result.astype(dtype)
        parts = hosts if name == "concatenate" else [numpy.expand_dims(host, axis) for host in hosts]
        single = (len(parts) > 8 and builtins.all(part.dtype == result.dtype for part in parts)
                  and builtins.sum(part.nbytes for part in parts) < CONCATENATE_SINGLE_BELOW * len(parts))
        if single:
            trace.recordHostToDevice(8 * len(parts), pinned=False)  # the pointers
            join = axis % result.ndim
            if not builtins.all(part.flags.c_contiguous and part.shape[join] == parts[0].shape[join] for part in parts):
                trace.recordHostToDevice(8 * len(parts), pinned=False)  # the offsets along the axis
                trace.recordHostToDevice(8 * len(parts) * result.ndim, pinned=False)  # the strides
            launch(name, result, *hosts)
        else:
            for part in parts:
                launch("copy", part, part)
        if out is not None:
            out._host[...] = result
            return out
        return wrap(result)

    call.__name__ = name
    return call


CONCATENATE_SINGLE_BELOW = 2 * 1024 * 1024  # CuPy's threshold_size: bytes per array under which one kernel joins them
concatenate = _gathering("concatenate", numpy.concatenate)
stack = _gathering("stack", numpy.stack)


def tile(A, reps):  # noqa: N803 - CuPy's name
    result = numpy.tile(hostOf(A), reps)
    launch("tile", result, hostOf(A))
    return wrap(result)


def repeat(a, repeats, axis=None):
    result = numpy.repeat(hostOf(a), repeats, axis=axis)
    launch("repeat", result, hostOf(a))
    return wrap(result)


def take(a, indices, axis=None, out=None):
    host, where = hostOf(a), hostOf(indices)
    result = numpy.take(host, where, axis=axis)
    launch("take", result, host, where)
    if out is not None:
        out._host[...] = result
        return out
    return wrap(result)


def bincount(x, weights=None, minlength=None):
    """As CuPy's: the output's length is max(x) + 1 (at least ``minlength``), read from the device: a sync."""
    host = hostOf(x)
    trace.recordSync("deviceToHost", host.itemsize, "bincount (max(x) decides the output's length)")
    result = numpy.bincount(host, None if weights is None else hostOf(weights), minlength=minlength or 0)
    launch("bincount", result, host)
    return wrap(result)


def swapaxes(a, axis1, axis2):
    return a.swapaxes(axis1, axis2)


def transpose(a, axes=None):
    return a.transpose(axes) if axes is not None else a.transpose()


def moveaxis(a, source, destination):
    return wrap(numpy.moveaxis(a._host, source, destination), owner=False)


def broadcast_to(array, shape):
    return wrap(numpy.broadcast_to(hostOf(array), shape), owner=False)


def split(ary, indices_or_sections, axis=0):
    return [wrap(part, owner=False) for part in numpy.split(hostOf(ary), indices_or_sections, axis=axis)]


def reshape(a, newshape, order="C"):
    return a.reshape(newshape)


def ravel(a, order="C"):
    return a.ravel()


def copyto(dst, src, casting="same_kind", where=None):
    source, mask = hostOf(src), True if where is None else hostOf(where)
    numpy.copyto(dst._host, source, casting=casting, where=mask)
    launch("copy", dst._host, source, mask)


def may_share_memory(a, b, max_work=None):
    """As CuPy's: whether the two arrays' address ranges meet (no launch: CuPy reads the arrays' pointers)."""
    return bool(numpy.may_share_memory(hostOf(a), hostOf(b)))


def isscalar(element):
    return numpy.isscalar(element)


def _computed(name, result, *operands, out=None):
    """A fresh device array of a computing function's result (one launch), or a scalar as a 0-d array; written into
    ``out`` instead when given, as CuPy's kernel writes it."""
    result = numpy.asarray(result)
    arrays = [operand for operand in operands if isinstance(operand, numpy.ndarray)]
    if out is not None:
        hostOf(out)[...] = result
        launch(name, hostOf(out), *arrays)
        return out
    launch(name, result, *arrays)
    return wrap(result)


def take_along_axis(a, indices, axis):
    return _computed("take_along_axis", numpy.take_along_axis(hostOf(a), hostOf(indices), axis), hostOf(a),
                     hostOf(indices))


def put_along_axis(arr, indices, values, axis):
    target, where, source = hostOf(arr), hostOf(indices), hostOf(values)
    numpy.put_along_axis(target, where, source, axis)
    launch("put_along_axis", numpy.asarray(source), where, source)


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    if retstep:
        values, step = numpy.linspace(start, stop, num, endpoint, True, dtype, axis)
        return _computed("linspace", values), step
    return _computed("linspace", numpy.linspace(start, stop, num, endpoint, False, dtype, axis))


def eye(N, M=None, k=0, dtype=float, order="C"):  # noqa: N803 - CuPy's names
    return _computed("eye", numpy.eye(N, M, k, dtype=dtype))


def identity(n, dtype=float):
    return _computed("eye", numpy.identity(n, dtype=dtype))


def expand_dims(a, axis):
    return wrap(numpy.expand_dims(hostOf(a), axis), owner=False)


def squeeze(a, axis=None):
    return a.squeeze(axis)


def flip(a, axis=None):
    return wrap(numpy.flip(hostOf(a), axis), owner=False)


def pad(array, pad_width, mode="constant", **kwargs):
    host = hostOf(array)
    return _computed("pad", numpy.pad(host, pad_width, mode, **kwargs), host)


def _scan(name, function):
    def call(a, axis=None, dtype=None, out=None):
        host = hostOf(a)
        result = function(host, axis=axis, dtype=dtype)
        if out is not None:
            out._host[...] = result
            launch(name, out._host, host)
            return out
        return _computed(name, result, host)

    call.__name__ = name
    return call


cumsum = _scan("cumsum", numpy.cumsum)
cumprod = _scan("cumprod", numpy.cumprod)


def einsum(*operands, **kwargs):
    """One launch whose FLOPs are 2 x the product of every index's size (subscripts given as a string)."""
    hosts = [operand if isinstance(operand, str) else hostOf(operand) for operand in operands]
    arrays = [host for host in hosts if isinstance(host, numpy.ndarray)]
    result = numpy.asarray(numpy.einsum(*hosts, **kwargs))
    sizes = {}
    if isinstance(hosts[0], str):
        for letters, array in zip(hosts[0].split("->")[0].split(","), arrays):
            sizes.update(zip(letters.replace("...", ""), array.shape[-len(letters.replace("...", "")) or 0:]))
    flops = 2 * int(numpy.prod(list(sizes.values()), dtype=numpy.int64)) if sizes else 0
    trace.recordLaunch("einsum", builtins.max(result.size, 1), builtins.sum(array.nbytes for array in arrays),
                       result.nbytes, builtins.max([array.size for array in arrays] + [result.size]), flops=flops,
                       math=productMath(result.dtype))
    return wrap(result)


def outer(a, b, out=None):
    return _computed("outer", numpy.outer(hostOf(a), hostOf(b)), hostOf(a), hostOf(b), out=out)


def tensordot(a, b, axes=2):
    x, y = hostOf(a), hostOf(b)
    result = numpy.asarray(numpy.tensordot(x, y, axes))
    inner = x.size * y.size // builtins.max(result.size, 1)
    trace.recordLaunch("tensordot", builtins.max(x.size, y.size, result.size), x.nbytes + y.nbytes, result.nbytes,
                       builtins.max(x.size, y.size, result.size), flops=2 * int(numpy.sqrt(inner)) * result.size,
                       math=productMath(result.dtype))
    return wrap(result)


def sort(a, axis=-1, kind=None):
    """Stable, as CuPy's (a radix sort)."""
    return _computed("sort", numpy.sort(hostOf(a), axis=axis, kind="stable"), hostOf(a))


def argsort(a, axis=-1, kind=None):
    """Stable, as CuPy's (a radix sort)."""
    return _computed("argsort", numpy.argsort(hostOf(a), axis=axis, kind="stable"), hostOf(a))


def argmin(a, axis=None, dtype=None, out=None, keepdims=False):
    return a.argmin(axis=axis, out=out, keepdims=keepdims)


def around(a, decimals=0, out=None):
    host = hostOf(a)
    if out is not None:
        numpy.around(host, decimals, out=hostOf(out))
        launch("around", out._host, host)
        return out
    return _computed("around", numpy.around(host, decimals), host)


round = around  # noqa: A001 - CuPy's name


def count_nonzero(a, axis=None):
    return _computed("count_nonzero", numpy.count_nonzero(hostOf(a), axis=axis), hostOf(a))


def diag(v, k=0):
    return _computed("diag", numpy.diag(hostOf(v), k), hostOf(v))


def triu(m, k=0):
    return _computed("triu", numpy.triu(hostOf(m), k), hostOf(m))


def tril(m, k=0):
    return _computed("tril", numpy.tril(hostOf(m), k), hostOf(m))


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    host = hostOf(a)
    return _computed("var", numpy.var(host, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims), host, out=out)


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    host = hostOf(a)
    return _computed("std", numpy.std(host, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims), host, out=out)


def roll(a, shift, axis=None):
    return _computed("roll", numpy.roll(hostOf(a), shift, axis), hostOf(a))


def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *, equal_nan=True):
    """As CuPy's: the number of distinct values decides the output's size, read from the device (a sync)."""
    host = hostOf(ar)
    trace.recordSync("deviceToHost", 8, "unique (the count decides the output's size)")
    results = numpy.unique(host, return_index, return_inverse, return_counts, axis)
    if isinstance(results, tuple):
        return tuple(_computed("unique", result, host) for result in results)
    return _computed("unique", results, host)


def meshgrid(*xi, **kwargs):
    return [_computed("meshgrid", grid) for grid in numpy.meshgrid(*[hostOf(x) for x in xi], **kwargs)]


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return _computed("isclose", numpy.isclose(hostOf(a), hostOf(b), rtol, atol, equal_nan), hostOf(a), hostOf(b))


def result_type(*arrays_and_dtypes):
    return numpy.result_type(*[part.dtype if isinstance(part, ndarray) else part for part in arrays_and_dtypes])


def can_cast(from_, to, casting="safe"):
    return numpy.can_cast(from_.dtype if isinstance(from_, ndarray) else from_, to, casting)


def broadcast_arrays(*args):
    return [wrap(view, owner=False) for view in numpy.broadcast_arrays(*[hostOf(arg) for arg in args])]


finfo, iinfo, promote_types = numpy.finfo, numpy.iinfo, numpy.promote_types
FROM_NUMPY = ("finfo", "iinfo", "promote_types")  # no device work: the same objects as NumPy's, as in CuPy
logaddexp = _ufunc("logaddexp", numpy.logaddexp)
