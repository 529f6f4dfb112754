"""hypothesis strategies for kernel cases: arrays whose values include IEEE special values, shapes, dtypes.

``arrays(dtype, shape)`` draws finite values in [low, high] and then puts a few special values at drawn
positions: NaN, +inf, -inf, -0.0, or subnormals of the dtype (``specialValues``). Most elements stay ordinary,
so outputs keep meaningful numbers beside the NaNs and infinities.
"""

import numpy
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLOAT_TYPES = (numpy.float16, numpy.float32, numpy.float64)


def specialValues(dtype, kind=None):
    """The special values of ``dtype``: "nonfinite" ones (NaN, ±inf, -0.0) and "tiny" ones (-0.0, the smallest
    subnormal and the largest, with both signs); both kinds without ``kind``."""
    info = numpy.finfo(dtype)
    tiny, subnormal = float(info.tiny), float(info.smallest_subnormal)
    kinds = {"nonfinite": (numpy.nan, numpy.inf, -numpy.inf, -0.0),
             "tiny": (-0.0, subnormal, -subnormal, tiny - subnormal, -(tiny - subnormal))}
    return kinds[kind] if kind else kinds["nonfinite"] + kinds["tiny"][1:]


# One kind of special values per case, shared by all its arrays: an infinity and a subnormal never meet, since
# their product is NaN in float32 (the subnormal times a factor underflows to 0) but a number in a float64 oracle.
SPECIAL_KIND = st.shared(st.sampled_from(["nonfinite", "tiny"]), key="minidl.testing.specialKind")


def floatDtypes(half=False):
    """float32 and float64 (and float16 with ``half``)."""
    return st.sampled_from(FLOAT_TYPES if half else FLOAT_TYPES[1:])


def shapes(maxDims=3, maxSide=8):
    """Shapes of 1 to ``maxDims`` axes, each of 1 to ``maxSide``."""
    return hnp.array_shapes(min_dims=1, max_dims=maxDims, min_side=1, max_side=maxSide)


def rowLengths(short=6):
    """Lengths of a row kernel's rows: 1 to ``short``, or 16 to 40, so that a row's loop on the CPU runs whole
    vectors of the compiled loop (16 float32 lanes with AVX-512), not only its remainder."""
    return st.integers(1, short) | st.sampled_from([16, 24, 40])


def spans(length):
    """How many consecutive values of a row of ``length`` one element of a row kernel covers
    (``backend.valuesPerElement``): one (a GPU's), the whole row (the CPU's) or a divisor between."""
    return st.sampled_from([span for span in range(1, length + 1) if length % span == 0])


@st.composite
def arrays(draw, dtype, shape, low=-4.0, high=4.0, specials=True):
    """An array of ``dtype`` and ``shape``: normal values in [low, high] (and zeros), and with ``specials`` (a float
    dtype only) up to three of ``specialValues(dtype)`` at drawn positions. Subnormals come only as "tiny" specials,
    so that they never meet an infinity (see SPECIAL_KIND)."""
    dtype = numpy.dtype(dtype)
    finite = st.floats(low, high, width=dtype.itemsize * 8, allow_subnormal=False)  # subnormals: the "tiny" kind only
    array = draw(hnp.arrays(dtype, shape, elements=finite))
    return draw(withSpecials(array)) if specials and dtype.kind == "f" else array


@st.composite
def withSpecials(draw, array):
    """A copy of the float ``array`` with up to three special values at drawn positions, all of one kind in one
    hypothesis example (see ``specialValues``): non-finite ones, or tiny ones."""
    array = array.copy()
    flat = array.reshape(-1)
    values = specialValues(array.dtype, draw(SPECIAL_KIND))
    for _ in range(draw(st.integers(0, min(3, array.size)))):
        flat[draw(st.integers(0, array.size - 1))] = draw(st.sampled_from(values))
    return array


def f32(value):
    """``value`` rounded to float32, as kernels that take float32 hyperparameters see it: oracles use it too."""
    return float(numpy.float32(value))
