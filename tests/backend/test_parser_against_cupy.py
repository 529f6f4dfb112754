"""minidl's kernel parameter parser against CuPy's own: a declaration minidl accepts must mean the same to
CuPy (names, dtypes, raw), and one CuPy refuses must be refused by minidl, so that a kernel passing every CPU
test cannot fail at its first GPU call. minidl refuses a few more (REFUSED_BY_MINIDL_ONLY, each with its reason).

Runs where CuPy imports (tests/optional.py; .ci/run requires it); needs no GPU: CuPy parses in its constructor.
"""

import numpy
import pytest

from minidl import BackendError
from minidl.backend.elementwise import parseParams
from tests.optional import importCupy

cupy = importCupy()  # skips where CuPy is not installed, fails in .ci/run

VALID = [
    "", "T x", "T x, float32 a", "raw int32 labels, T x", "  T   x ,raw T y ", "T x\n, U y", "int8 x, raw T y",
    "bool m, uint8 k, uint16 a, uint32 b, uint64 c, int16 d, int64 n, float16 h, float64 g", "raw float32 w",
    "complex64 z",  # parsed alike; minidl then refuses it with a clear error when it writes the C type
]
REFUSED_BY_BOTH = [
    " ", "T x,", ",T x", "T x,,T y", "T", "raw", "T x y", "Tx x", "raw T", "float32 a b", "float128 q",
    "datetime64 d", "U8 s", "object o", "T x, ", "notatype x",
]
REFUSED_BY_MINIDL_ONLY = {
    "float x": "a dtype alias: CuPy reads float as float64, which C code reads as float32",
    "f4 x": "a dtype alias",
    "T 1x": "not a C identifier: CuPy accepts it, then fails to compile",
    "1 x": "a placeholder that is not a C identifier: CuPy fails to compile its typedef",
    "_non_const T x": "a CuPy-internal keyword",
    "CIndexer _i": "CuPy's internal indexer type",
    "raw raw T x": "a doubled keyword",
}


def cupyParse(text):
    """CuPy's parse of an input parameter list as (name, dtype or placeholder, raw) triples, or None if refused."""
    try:
        kernel = cupy.ElementwiseKernel(text, "T _out", "", "parse_check")
    except Exception:  # CuPy raises Exception, TypeError or ValueError here
        return None
    return [(param.name, param.dtype if param.dtype is not None else param.ctype, param.raw)
            for param in kernel.in_params]


def minidlParse(text):
    try:
        params = parseParams(text, isOutput=False)
    except BackendError:
        return None
    return [(param.name, param.dtype if param.dtype is not None else param.typeName, param.raw) for param in params]


@pytest.mark.parametrize("text", VALID)
def test_what_minidl_accepts_means_the_same_to_cupy(text):
    ours = minidlParse(text)
    assert ours is not None and ours == cupyParse(text)
    assert all(isinstance(kind, str) or isinstance(kind, numpy.dtype) for _, kind, _ in ours)


@pytest.mark.parametrize("text", REFUSED_BY_BOTH)
def test_what_cupy_refuses_minidl_refuses(text):
    assert cupyParse(text) is None
    assert minidlParse(text) is None


@pytest.mark.parametrize("text", sorted(REFUSED_BY_MINIDL_ONLY))
def test_minidl_refuses_a_few_declarations_cupy_lets_through(text):
    assert cupyParse(text) is not None, f"CuPy refuses {text!r} now: move it to REFUSED_BY_BOTH"
    assert minidlParse(text) is None
