"""``assertMatches``: outputs against expected arrays, IEEE special values held exactly, the rest within a
tolerance of the dtype.

Where an expected value is NaN the output must be NaN, and only there; where it is an infinity the output must be
the same infinity; with ``signedZeros``, a zero must carry the expected zero's sign; every other value must be
within ``|a - e| <= atol + rtol·|e|``, element by element: a small value is held to its own relative tolerance,
not to one scaled by the largest value of the whole output.
"""

import numpy

TOLERANCES = {  # dtype -> (rtol, atol)
    numpy.dtype(numpy.float16): (2e-2, 2e-3),
    numpy.dtype(numpy.float32): (2e-5, 2e-6),
    numpy.dtype(numpy.float64): (1e-11, 1e-13),
}


def _first(mask, a, e):
    index = tuple(int(i) for i in numpy.argwhere(mask)[0])
    return f"{int(mask.sum())} of {mask.size} elements, first at {index}: got {a[index]!r}, expected {e[index]!r}"


def assertMatches(actual, expected, dtype, what, signedZeros=False, tolerances=None):
    """Every output of ``actual`` (a list of arrays) matches its ``expected`` array, of the same shape (no
    broadcasting), none left unchecked. ``tolerances``: (rtol, atol), by default ``TOLERANCES[dtype]``."""
    rtol, atol = tolerances or TOLERANCES[numpy.dtype(dtype)]
    assert len(actual) == len(expected), f"{what}: {len(actual)} outputs, {len(expected)} expected"
    for index, (a, e) in enumerate(zip(actual, expected)):
        a, e = numpy.asarray(a, dtype=numpy.float64), numpy.asarray(e, dtype=numpy.float64)
        assert a.shape == e.shape, f"{what}: output {index} has shape {a.shape}, expected {e.shape}"
        where = f"{what}: output {index}"
        nan = numpy.isnan(a) != numpy.isnan(e)
        assert not nan.any(), f"{where}: NaN where none is expected, or a number where NaN is: {_first(nan, a, e)}"
        infinite = numpy.isinf(e) & (a != e)
        assert not infinite.any(), f"{where}: an infinity expected: {_first(infinite, a, e)}"
        finite = numpy.isfinite(e)
        with numpy.errstate(invalid="ignore"):
            far = finite & ~(numpy.abs(a - e) <= atol + rtol * numpy.abs(e))
        assert not far.any(), f"{where}: not within rtol={rtol}, atol={atol:g} of each element: {_first(far, a, e)}"
        if signedZeros:
            zeros = (a == 0) & (e == 0) & (numpy.signbit(a) != numpy.signbit(e))
            assert not zeros.any(), f"{where}: a zero of the wrong sign: {_first(zeros, a, e)}"
