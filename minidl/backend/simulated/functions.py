"""The functions of the simulated ``cupy`` namespace: the part of CuPy 14's API that minidl calls on the device,
with CuPy's signatures (tests/backend/test_simulated_api.py holds each name against the real package).

Creation from host data (``array``, ``asarray``, ``ascontiguousarray`` of a NumPy array) is a host-to-device copy;
each computing function is one launch (a product one cuBLAS call with its FLOPs); views launch nothing.
"""

import builtins

import numpy

from minidl.backend.simulated import trace
from minidl.backend.simulated.ndarray import hostOf, launch, ndarray, wrap


def _fromHost(obj, dtype):
    from minidl.backend.simulated.cuda import isPinned

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


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """The host copy of a device array (a sync); host data as it is."""
    if isinstance(a, ndarray):
        return a.get(out=out)
    return numpy.asarray(a)


def get_array_module(*args):  # noqa: N802 - CuPy's name
    import minidl.backend.simulated as simulated

    return simulated.cupy if builtins.any(isinstance(arg, ndarray) for arg in args) else numpy


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
    return a.clip(a_min, a_max)


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
    return a.argmax(axis=axis, keepdims=keepdims)


def _product(name, result, *operands):
    """Record one cuBLAS call: m x k by k x n products, 2*m*n*k FLOPs per matrix of the batch."""
    a, b = operands
    k = a.shape[-1] if a.ndim else 1
    flops = 2 * result.size * k
    arrays = [operand for operand in operands if isinstance(operand, numpy.ndarray)]
    threads = builtins.max(array.size for array in arrays + [result])  # cuBLAS spreads a product over the GPU
    trace.recordLaunch(name, threads, builtins.sum(array.nbytes for array in arrays), result.nbytes,
                       builtins.max(array.size for array in arrays + [result]), flops=flops)


def matmul(x1, x2, out=None):
    a, b = hostOf(x1), hostOf(x2)
    if out is not None:
        numpy.matmul(a, b, out=hostOf(out))
        _product("matmul", out._host, a, b)
        return out
    result = numpy.matmul(a, b)
    _product("matmul", result, a, b)
    return wrap(result)


def dot(a, b, out=None):
    a, b = hostOf(a), hostOf(b)
    result = numpy.asarray(numpy.dot(a, b))
    if out is not None:
        out._host[...] = result
        _product("dot", out._host, a, b)
        return out
    _product("dot", result, a, b)
    return wrap(result)


def vdot(a, b):
    a, b = hostOf(a), hostOf(b)
    result = numpy.asarray(numpy.vdot(a, b))
    trace.recordLaunch("vdot", a.size, a.nbytes + b.nbytes, result.nbytes, a.size, flops=2 * a.size)
    return wrap(result)


def _gathering(name, function):
    def call(tup, axis=0, out=None, dtype=None):
        hosts = [hostOf(array) for array in tup]
        result = function(hosts, axis=axis)
        if dtype is not None:
            result = result.astype(dtype)
        launch(name, result, *hosts)
        if out is not None:
            out._host[...] = result
            return out
        return wrap(result)

    call.__name__ = name
    return call


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
    source = hostOf(src)
    numpy.copyto(dst._host, source, casting=casting)
    launch("copy", dst._host, source)


def isscalar(element):
    return numpy.isscalar(element)
