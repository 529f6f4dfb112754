"""The backend's random state: one NumPy generator for every draw (initialisation, shuffling, dropout masks
are drawn on the host), so the same seed gives the same network and run on the CPU and on the GPU.

minidl draws nothing from CuPy's device generator, so it never touches it: cuRAND is not needed.
``getRandomState()``/``setRandomState(state)`` save and restore the generator (a JSON-able dict), so a resumed
run shuffles exactly as an uninterrupted one.
"""

import numbers

import numpy

from minidl.backend import device
from minidl.errors import BackendError

_generator = numpy.random.default_rng()


def seed(value):
    """Reset the generator minidl draws from with one integer in [0, 2**64); anything else is a BackendError
    that leaves it as it was."""
    global _generator
    if not isinstance(value, numbers.Integral) or not 0 <= value < 2**64:
        raise BackendError(f"seed takes an integer in [0, 2**64), got {value!r:.100}")
    value = int(value)
    _generator = numpy.random.default_rng(value)


class _RecordedGenerator:
    """The generator as the simulated device sees it: each draw is recorded in the trace (on the GPU path every
    host draw ends up on the device: initial parameters, dropout masks, shuffled batches)."""

    def __init__(self, generator):
        self._generator = generator

    def __getattr__(self, name):
        value = getattr(self._generator, name)
        if not callable(value):
            return value

        def draw(*args, **kwargs):
            result = value(*args, **kwargs)
            from minidl.backend.simulated import trace

            trace.recordRandomDraw(name, numpy.size(result) if result is not None else numpy.size(args[0]))
            return result

        return draw


def generator():
    """The host-side numpy.random.Generator; draw from it rather than from numpy's global state."""
    return _RecordedGenerator(_generator) if device.simulated else _generator


def getRandomState():
    """The host generator's state as a JSON-able dict: ``{"host": <numpy bit generator state>}``."""
    return {"host": _generator.bit_generator.state}


def setRandomState(state):
    """Restore a state returned by ``getRandomState()``; a state of another bit generator is a BackendError."""
    host = state.get("host") if isinstance(state, dict) else None
    expected = type(_generator.bit_generator).__name__
    if not isinstance(host, dict) or host.get("bit_generator") != expected:
        raise BackendError(f"a random state must be {{'host': <{expected} state>}}, got {state!r:.200}")
    bitGenerator = type(_generator.bit_generator)()
    try:
        bitGenerator.state = host
    except (TypeError, ValueError, KeyError, OverflowError) as error:  # OverflowError: out-of-range ints
        raise BackendError(f"cannot restore the {expected} random state: {error}") from error
    _generator.bit_generator.state = bitGenerator.state
