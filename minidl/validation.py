"""The value checks of the whole package: counts and sizes are integers, hyperparameters finite real numbers
within their bounds.

Every check takes ``(value, what, error, ...)`` and returns the value as a Python int or float, or raises ``error``
(a MinidlError subclass: ModuleError in modules, CostError in costs, OptimizerError in optimizers, schedules and
hooks) naming what was expected. One rule for counts: an integer (Python's or NumPy's); bools are refused, although
Python counts them as ints, and so are NaN, infinities and floats, integral ones (3.0) included.
"""

import math
import numbers

from minidl.errors import ModuleError


def checkInteger(value, what, error=ModuleError, minimum=None, maximum=None):
    """``value`` as an int: an integer (Python's or NumPy's, not a bool), at least ``minimum`` and at most
    ``maximum`` when given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{what} must be an integer, got {value!r}")
    if maximum is not None and (value > maximum or minimum is not None and value < minimum):
        raise error(f"{what} must be an integer in [{minimum}, {maximum}], got {value!r}")
    if minimum is not None and value < minimum:
        raise error(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def checkFlag(value, what, error=ModuleError):
    """``value``, which must be True or False (not 0, 1 or None)."""
    if not isinstance(value, bool):
        raise error(f"{what} must be True or False, got {value!r}")
    return value


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
