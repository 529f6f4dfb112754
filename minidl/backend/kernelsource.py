"""The C++ text of an Elementwise kernel's host path, made from its own inParams, outParams, operation and
preamble by ``cupy.ElementwiseKernel``'s rules and compiled by g++ (on the GPU, CuPy generates and
compiles its own source: tests/backend/test_cupy_compiles.py compiles that for every recorded signature).

For one binding of the type placeholders to dtypes, the host text reads (after ``kernelprelude.h``), as CuPy's does:

    typedef float T;                               one typedef per placeholder, from the arguments' dtypes
    <preamble>
    extern "C" ... name(...) {
      loop over i in [0, n):                       i is the element index (ptrdiff_t)
        _ind.set(i);
        const T &x = _raw_x[_ind.get()];          non-raw input: its i-th element, read-only
        T &y = _raw_y[_ind.get()];                non-raw output: its i-th element, by reference
        <operation>;
    }

Scalars are const values of their type; raw arrays are CArrays named as declared, indexed by the operation
(``a[k]`` flat, ``a[{j, k}]`` per dimension, ``a.size()``); non-raw arrays are seen flattened, as CuPy sees
C-contiguous arrays. CuPy's device text runs this body in a grid-stride loop whose arguments are the kernel's
parameters; the host text runs it in a loop split over minidl's own threads (``hostthreads.cpp``, not an OpenMP
runtime), on every core when the loop's size times the kernel's ``grain`` (the values one element reads or
writes, a C expression of its scalars) reaches the pool's ``hostkernel.parallelFrom``.
Its arguments arrive as ``(n, void* const* args, const ptrdiff_t* rawShapes)``: one pointer per parameter
(to the data of an array, to the value of a scalar) and the shapes of the raw arrays, one after the other.
"""

from pathlib import Path

import numpy

from minidl.errors import BackendError

PRELUDE = (Path(__file__).parent / "kernelprelude.h").read_text()

CTYPES = {
    numpy.dtype(name): ctype
    for name, ctype in (
        ("bool", "bool"), ("int8", "signed char"), ("int16", "short"), ("int32", "int"), ("int64", "long long"),
        ("uint8", "unsigned char"), ("uint16", "unsigned short"), ("uint32", "unsigned int"),
        ("uint64", "unsigned long long"), ("float16", "float16"), ("float32", "float"), ("float64", "double"),
    )
}

HALF_CHECK = (  # the prelude defines float16 only where the host compiler has _Float16
    "#ifndef MINIDL_HALF\n#error \"float16 kernels need a C++ compiler with _Float16 (g++ >= 12, clang >= 15): "
    "set CXX to one, or MINIDL_CPU_KERNELS=numpy\"\n#endif\n"
)


def cType(dtype):
    """The C type CuPy writes for a dtype."""
    dtype = numpy.dtype(dtype)
    if dtype not in CTYPES:
        raise BackendError(f"kernels have no C type for {dtype}: use bool, an integer or a float dtype")
    return CTYPES[dtype]


def _typeOf(param, types):
    """The C type of a parameter under a binding of placeholders to dtypes."""
    dtype = param.dtype if param.dtype is not None else types.get(param.typeName)
    if dtype is None:
        raise BackendError(f"type {param.typeName} of {param.name} is not bound (bound: {sorted(types)})")
    return cType(dtype)


def _header(kernel, types, target):
    typedefs = "".join(f"typedef {cType(dtype)} {name};\n" for name, dtype in sorted(types.items()))
    binding = ", ".join(f"{name}={numpy.dtype(dtype).name}" for name, dtype in sorted(types.items()))
    return f"// {kernel.name} for the {target} ({binding or 'no placeholders'})\n{typedefs}{kernel.preamble}\n"


def _body(kernel, ndims):
    lines = ["_ind.set(i);"]
    for param, ndim in zip(kernel.params, ndims):
        if not param.raw and ndim is not None:
            const = "" if param.isOutput else "const "
            typeName = param.typeName if param.dtype is None else cType(param.dtype)
            lines.append(f"{const}{typeName} &{param.name} = _raw_{param.name}[_ind.get()];")
    lines.append(f"{kernel.operation};")
    return "".join(f"      {line}\n" for line in lines)


def hostSource(kernel, types, ndims):
    """The C++ text of the host path. ``types``: placeholder -> dtype; ``ndims``: per parameter, None for a
    scalar, the ndim of a raw array, 1 for a non-raw array (seen flattened)."""
    unpack, shapeAt = [], 0
    for index, (param, ndim) in enumerate(zip(kernel.params, ndims)):
        ctype, const = _typeOf(param, types), "" if param.isOutput else "const "
        if ndim is None:
            unpack.append(f"const {ctype} {param.name} = *static_cast<const {ctype}*>(_args[{index}]);")
        elif param.raw:
            unpack.append(f"{const}CArray<{ctype}, {ndim}> {param.name}(_args[{index}], _rawShapes + {shapeAt});")
            shapeAt += ndim
        else:
            unpack.append(f"{const}CArray<{ctype}, 1> _raw_{param.name}(_args[{index}], &_n);")
    unpacked = "".join(f"    {line}\n" for line in unpack)
    scalars = "".join(f"    {line}\n" for line, ndim in zip(unpack, ndims) if ndim is None)
    halfCheck = HALF_CHECK if any(_typeOf(param, types) == "float16" for param in kernel.params) else ""
    return (
        f"{PRELUDE}\n{halfCheck}{_header(kernel, types, 'host')}"
        f'extern "C" void {kernel.name}(const ptrdiff_t _n, void* const* _args, const ptrdiff_t* _rawShapes) {{\n'
        f"  ptrdiff_t _grain;\n"
        f"  {{\n"
        f"{scalars}"
        f"    _grain = (ptrdiff_t)({kernel.grain});\n"
        f"  }}\n"
        f"  auto _loop = [=](const ptrdiff_t _begin, const ptrdiff_t _end) {{  // unpacked here: locals, not captures\n"
        f"{unpacked}"
        f"    CIndexer _ind(_n);\n"
        f"    for (ptrdiff_t i = _begin; i < _end; ++i) {{\n"
        f"{_body(kernel, ndims)}"
        f"    }}\n"
        f"  }};\n"
        f"  minidlFor(_n, _n * _grain, _loop);\n"
        f"}}\n"
    )
