"""The C++ text of a Reduction's host path, made from its own parameters, mapExpr, reduceExpr, postMapExpr,
identity, reduceType and preamble by ``cupy.ReductionKernel``'s rules and compiled by g++ (on the GPU, CuPy
generates and compiles its own source).

The arrays are seen as CuPy sees them after moving the reduced axes first: output element ``i`` (C order over the
kept axes) reduces the elements ``j`` (C order over the reduced axes). For one binding the host text reads (after
``kernelprelude.h``), with CuPy's names:

    typedef float T;                                  one typedef per placeholder
    <preamble>
    #define REDUCE(a, b) (<reduceExpr>)
    #define POST_MAP(a) (<postMapExpr>)
    typedef <reduceType> _type_reduce;                by default the first output's type, as in CuPy
    loop over output elements i:                      split over minidl's threads (hostthreads.cpp)
      const T m = _raw_m[i];                          an input of the output's shape (kept axes, reduced ones 1)
      _acc[p] = _type_reduce(<identity>), p < LANES
      for each j in C order of the reduced axes (k: j's index along the last reduced axis):
        const T x = _raw_x[offset(i, j)];             an input of the whole shape
        const T s = _raw_s[j];                        an input of the reduced axes' shape (kept ones 1)
        _acc[k % LANES] = REDUCE(_acc[k % LANES], static_cast<_type_reduce>(<mapExpr>));
      for w = LANES/2, ..., 1: _acc[p] = REDUCE(_acc[p], _acc[p + w]) for p < w   (a fixed tree)
      T &y = _raw_y[i];                               each output, by reference
      POST_MAP(_acc[0]);

That order is the host path's contract: a result depends on the data alone, never on the thread count or the run
(LANES independent accumulators let g++ vectorize a sum without -ffast-math; the tree that joins them is fixed).
CuPy's device order is another tree (per block: a grid-stride walk, then shared memory halving), so the host and
the device agree within rounding, not bit for bit. ``_in_ind.size()`` and ``_out_ind.size()`` are the element
counts of the inputs and of the output, as in CuPy (so a mean's count is ``_in_ind.size() / _out_ind.size()``);
``_i`` is the output element's index and ``_J`` the element's position among the values it reduces (C order of
the reduced axes), the names CuPy's generated code gives them (its argmax maps ``_J``).
Raw arrays are CArrays named as declared; scalars are const values of their type.

The call passes ``(n, void* const* args, const ptrdiff_t* shapes)``: n the output elements, a pointer per
parameter, and the raw arrays' shapes followed by the geometry (``geometry``).
"""

from minidl.backend import kernelsource
from minidl.backend.kernelsource import HALF_CHECK, PRELUDE, cType

LANES = 8  # independent partial accumulators per output element: 8 floats fill an AVX register


def geometry(shape, axes):
    """The reduction's shape as the host text walks it, from the input shape and the sorted reduced axes: the
    numbers ``[inSize, inner, innerStride, keptRuns, keptSizes..., keptStrides..., outerRuns, outerSizes...,
    outerStrides...]``. Axes of size 1 are dropped and neighbouring axes of one kind merged into runs; the last
    reduced run is the inner walk, the other reduced runs the outer one; strides are in elements."""
    runs = []  # [size, reduced, stride]
    stride = 1
    for axis in reversed(range(len(shape))):
        size, reduced = shape[axis], axis in axes
        if size == 1:
            continue
        if runs and runs[-1][1] == reduced:  # C-contiguous: the axis continues the run
            runs[-1][0] *= size
        else:
            runs.append([size, reduced, stride])
        stride *= size
    runs.reverse()
    kept = [run for run in runs if not run[1]]
    reducedRuns = [run for run in runs if run[1]]
    inner, innerStride = (reducedRuns[-1][0], reducedRuns[-1][2]) if reducedRuns else (1, 1)
    outer = reducedRuns[:-1]
    size = 1
    for side in shape:
        size *= side
    return ([size, inner, innerStride, len(kept)] + [run[0] for run in kept] + [run[2] for run in kept]
            + [len(outer)] + [run[0] for run in outer] + [run[2] for run in outer])


def _typeName(param, types):
    return param.typeName if param.dtype is None else cType(param.dtype)


def _block(kernel, kinds, types, stride):
    """The walk along the inner reduced run (stride ``stride``, a C expression), LANES elements at a time."""
    at = {"full": "_j", "reduced": "_o * _inner + _k + _p"}
    reads = "".join(f"          const {_typeName(param, types)} {param.name} = _raw_{param.name}[{at[kind]}];\n"
                    for param, kind in zip(kernel.params, kinds) if kind in at)
    step = (f"          const ptrdiff_t _j = _at + (_k + _p) * {stride}, _J = _o * _inner + _k + _p;\n{reads}"
            f"          _acc[_p] = REDUCE(_acc[_p], static_cast<_type_reduce>({kernel.mapExpr}));\n")
    return (
        f"        {{\n"
        f"        ptrdiff_t _k = 0;\n"
        f"        for (; _k + {LANES} <= _inner; _k += {LANES}) {{\n"
        f"#pragma omp simd\n"
        f"          for (int _p = 0; _p < {LANES}; ++_p) {{\n{step}"
        f"          }}\n"
        f"        }}\n"
        f"        for (int _p = 0; _k + _p < _inner; ++_p) {{\n{step}"
        f"        }}\n"
        f"        }}\n"
    )


def _lines(texts):
    return "".join(f"    {text}\n" for text in texts)


def hostSource(kernel, types, kinds, ndims):
    """The C++ text of the host path. ``types``: placeholder -> dtype; ``kinds`` per parameter: "scalar",
    "full" (an input of the whole shape), "kept" (an input of the output's shape), "reduced" (an input of the
    reduced axes' shape), "out" (an output), "raw";
    ``ndims``: per parameter the ndim of a raw array (else None)."""
    unpack, scalars, shapeAt = [], [], 0
    for index, (param, kind, ndim) in enumerate(zip(kernel.params, kinds, ndims)):
        ctype = kernelsource._typeOf(param, types)
        const = "" if param.isOutput else "const "
        if kind == "scalar":
            scalars.append(f"const {ctype} {param.name} = *static_cast<const {ctype}*>(_args[{index}]);")
        elif kind == "raw":
            unpack.append(f"{const}CArray<{ctype}, {ndim}> {param.name}(_args[{index}], _shapes + {shapeAt});")
            shapeAt += ndim
        else:
            size = {"full": "&_inSize", "reduced": "&_reducedSize"}.get(kind, "&_n")
            unpack.append(f"{const}CArray<{ctype}, 1> _raw_{param.name}(_args[{index}], {size});")
    perOutput = "".join(f"      const {_typeName(param, types)} {param.name} = _raw_{param.name}[_i];\n"
                        for param, kind in zip(kernel.params, kinds) if kind == "kept")
    outputs = "".join(f"      {_typeName(param, types)} &{param.name} = _raw_{param.name}[_i];\n"
                      for param in kernel.params if param.isOutput)
    reduceType = kernel.reduceType or _typeName(kernel.params[len(kernel.inputs)], types)
    halfCheck = HALF_CHECK if any(kernelsource._typeOf(param, types) == "float16" for param in kernel.params) else ""
    typedefs = "".join(f"typedef {cType(dtype)} {name};\n" for name, dtype in sorted(types.items()))
    binding = ", ".join(f"{name}={dtype.name}" for name, dtype in sorted(types.items()))
    return (
        f"{PRELUDE}\n{halfCheck}// {kernel.name} for the host ({binding or 'no placeholders'})\n{typedefs}"
        f"{kernel.preamble}\n"
        f"#define REDUCE(a, b) ({kernel.reduceExpr})\n"
        f"#define POST_MAP(a) ({kernel.postMapExpr})\n"
        f"typedef {reduceType} _type_reduce;\n"
        f'extern "C" void {kernel.name}(const ptrdiff_t _n, void* const* _args, const ptrdiff_t* _shapes) {{\n'
        f"  const ptrdiff_t* _geometry = _shapes + {shapeAt};\n"
        f"  const ptrdiff_t _inSize = _geometry[0], _inner = _geometry[1], _innerStride = _geometry[2];\n"
        f"  const ptrdiff_t _kept = _geometry[3];\n"
        f"  const ptrdiff_t* _keptSizes = _geometry + 4;\n"
        f"  const ptrdiff_t* _keptStrides = _keptSizes + _kept;\n"
        f"  const ptrdiff_t _outerRuns = _keptStrides[_kept];\n"
        f"  const ptrdiff_t* _outerSizes = _keptStrides + _kept + 1;\n"
        f"  const ptrdiff_t* _outerStrides = _outerSizes + _outerRuns;\n"
        f"  ptrdiff_t _outer = 1;\n"
        f"  for (ptrdiff_t _r = 0; _r < _outerRuns; ++_r) _outer *= _outerSizes[_r];\n"
        f"  const ptrdiff_t _reducedSize = _outer * _inner;\n"
        f"  auto _loop = [=](const ptrdiff_t _begin, const ptrdiff_t _end) {{\n"
        f"{_lines(scalars + unpack)}"
        f"    CIndexer _in_ind(_inSize), _out_ind(_n);\n"
        f"    for (ptrdiff_t _i = _begin; _i < _end; ++_i) {{\n"
        f"      _out_ind.set(_i);\n"
        f"      ptrdiff_t _base = 0;\n"
        f"      for (ptrdiff_t _r = _kept - 1, _rest = _i; _r >= 0; --_r) {{\n"
        f"        _base += _rest % _keptSizes[_r] * _keptStrides[_r];\n"
        f"        _rest /= _keptSizes[_r];\n"
        f"      }}\n"
        f"{perOutput}"
        f"      _type_reduce _acc[{LANES}];\n"
        f"      for (int _p = 0; _p < {LANES}; ++_p) _acc[_p] = _type_reduce({kernel.identity});\n"
        f"      for (ptrdiff_t _o = 0; _o < _outer; ++_o) {{\n"
        f"        ptrdiff_t _at = _base;\n"
        f"        for (ptrdiff_t _r = _outerRuns - 1, _rest = _o; _r >= 0; --_r) {{\n"
        f"          _at += _rest % _outerSizes[_r] * _outerStrides[_r];\n"
        f"          _rest /= _outerSizes[_r];\n"
        f"        }}\n"
        f"        if (_innerStride == 1)\n{_block(kernel, kinds, types, '1')}"
        f"        else\n{_block(kernel, kinds, types, '_innerStride')}"
        f"      }}\n"
        f"      for (int _w = {LANES // 2}; _w > 0; _w /= 2) {{\n"
        f"        for (int _p = 0; _p < _w; ++_p) {{\n"
        f"          const _type_reduce _a = _acc[_p], _b = _acc[_p + _w];\n"
        f"          _acc[_p] = REDUCE(_a, _b);\n"
        f"        }}\n"
        f"      }}\n"
        f"{outputs}"
        f"      POST_MAP(_acc[0]);\n"
        f"    }}\n"
        f"  }};\n"
        f"  minidlFor(_n, _inSize + _n, _loop);\n"
        f"}}\n"
    )
