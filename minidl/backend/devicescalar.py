"""DeviceScalar: a number that stays on the device until someone reads it.

A cost's error on a GPU is a 0-d device array; reading it every step would stall the GPU. ``DeviceScalar(array)``
holds it and behaves as the Python float it stands for (``float()``, printing and formatting, comparisons,
arithmetic, ``numpy.asarray``, ``pytest.approx``): the first such use copies it to the host (a sync) and keeps the
value. A training loop that never looks at it never syncs for it.
"""

import numbers

from minidl.backend.device import toHost


class DeviceScalar(numbers.Real):
    __slots__ = ("array", "_value")

    def __init__(self, array):
        self.array = array
        self._value = None

    def __float__(self):
        if self._value is None:
            self._value = float(toHost(self.array))
        return self._value

    def __repr__(self):
        return repr(float(self))

    def __str__(self):
        return str(float(self))

    def __format__(self, spec):
        return format(float(self), spec)

    def __hash__(self):
        return hash(float(self))

    def __bool__(self):
        return bool(float(self))

    def __array__(self, dtype=None, copy=None):
        return toHost(self.array).astype(dtype or "float64")


def _delegate(name):
    method = getattr(float, name)

    def delegated(self, *args):
        return method(float(self), *(float(arg) if isinstance(arg, DeviceScalar) else arg for arg in args))

    delegated.__name__ = name
    return delegated


for _name in ("__abs__", "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
              "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__pow__", "__rpow__",
              "__neg__", "__pos__", "__trunc__", "__floor__", "__ceil__", "__round__", "__eq__", "__lt__", "__le__",
              "__gt__", "__ge__"):
    setattr(DeviceScalar, _name, _delegate(_name))
DeviceScalar.__abstractmethods__ = frozenset()
del _name
