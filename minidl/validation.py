"""Checks of constructor arguments: sizes are integers, hyperparameters finite real numbers within their bounds.

Each returns the value as a Python int or float, or raises ``error`` (a MinidlError subclass: ModuleError in
modules, CostError in costs) naming what was expected. bools are refused, although Python counts them as ints;
so are NaN, infinities and non-integral floats (2.5 or 3.0) where an integer is expected.
"""

import math
import numbers

from minidl.errors import ModuleError


def checkInteger(value, what, error=ModuleError, minimum=None):
    """``value`` as an int: an integer (Python's or NumPy's, not a bool), at least ``minimum`` when given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{what} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise error(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def checkSize(value, what, error=ModuleError):
    """``value`` as an int >= 1: a size, a count of maps, a vocabulary."""
    return checkInteger(value, what, error, minimum=1)


def checkNumber(value, what, error=ModuleError, low=None, high=None, lowOpen=False, highOpen=False):
    """``value`` as a float: a finite real number (not a bool) in [low, high], either end open when asked."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise error(f"{what} must be a finite real number, got {value!r}")
    value = float(value)
    tooLow = low is not None and (value <= low if lowOpen else value < low)
    tooHigh = high is not None and (value >= high if highOpen else value > high)
    if tooLow or tooHigh:
        interval = f"{'(' if lowOpen else '['}{'-inf' if low is None else low}, " \
                   f"{'inf' if high is None else high}{')' if highOpen else ']'}"
        raise error(f"{what} must lie in {interval}, got {value!r}")
    return value
