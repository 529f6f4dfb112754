"""The backend's random state, two generators under one seed, so the same seed gives the same network and run
on every device and path:

- on the host, one NumPy generator for what is drawn once or stays on the host (initial parameters, the order
  of host data, augmentation, sampling text);
- on the device, Philox4x32-10 (``minidl.backend.philox``) for what a training step draws (dropout masks, noise):
  a draw is a kernel that writes its numbers in place on the device, element i of draw number ``counter`` being
  a function of (seed, counter, i) alone. Its whole state is (seed, counter): ``deviceDraw()`` hands out the next
  counter.

minidl draws nothing from CuPy's device generator, so cuRAND is not needed. ``getRandomState()``/
``setRandomState(state)`` save and restore both (a JSON-able dict), so a resumed run shuffles and drops exactly
as an uninterrupted one.
"""

import numbers
import secrets

import numpy

from minidl.backend import device
from minidl.backend.philox import normalKer, uniformKer
from minidl.backend.tape import liveValues
from minidl.errors import BackendError

_generator = numpy.random.default_rng()
_device = {"seed": secrets.randbits(64), "counter": 0}  # a fresh process draws its own seed, as NumPy's does


def seed(value):
    """Reset the generator minidl draws from with one integer in [0, 2**64); anything else is a BackendError
    that leaves it as it was."""
    global _generator
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < 2**64:
        raise BackendError(f"seed takes an integer in [0, 2**64), got {value!r:.100}")
    value = int(value)
    _generator = numpy.random.default_rng(value)
    _device.update(seed=value, counter=0)


def deviceDraw():
    """(seed, counter) of the next draw on the device, as the random kernels take them; the counter advances by
    one, so every call gets numbers of its own."""
    return liveValues(_nextDraw(), _nextDraw)  # a replayed step draws anew, in the order it drew


def _nextDraw():
    draw = (_device["seed"], _device["counter"])
    _device["counter"] = (_device["counter"] + 1) % 2**64
    return draw


def uniform(shape, low=0.0, high=1.0, dtype=numpy.float32):
    """A new device array of ``shape``: low + (high - low) · u for u uniform in [0, 1), drawn on the device."""
    out = _drawnInto("uniform", shape, dtype, low=low, high=high)
    return uniformKer(*deviceDraw(), low, high, out)


def normal(shape, mean=0.0, sigma=1.0, dtype=numpy.float32):
    """A new device array of ``shape``: mean + sigma · z for z standard normal, drawn on the device."""
    out = _drawnInto("normal", shape, dtype, mean=mean, sigma=sigma)
    return normalKer(*deviceDraw(), mean, sigma, out)


def _drawnInto(what, shape, dtype, **values):
    """The array a draw fills, once its arguments are checked, before the draw's counter moves: a floating dtype (an
    integer or bool array would hold the draws truncated, a uniform's all low) and real numbers."""
    dtype = numpy.dtype(dtype)
    if dtype.kind != "f":
        raise BackendError(f"{what} draws float16, float32 or float64 arrays, got {dtype}")
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise BackendError(f"{what}: {name} must be a real number, got {value!r}")
    return device.xp.empty(shape, dtype=dtype)


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
    """The host-side numpy.random.Generator, for numbers that go to the device (initial parameters); draw from
    it rather than from numpy's global state. The simulated device records each draw."""
    return _RecordedGenerator(_generator) if device.simulated else _generator


def hostGenerator():
    """The same generator, for numbers that stay on the host: which host data a step reads (the order of a data
    set, text windows, augmentation of host batches). No device sees them, so no trace records them."""
    return _generator


def getRandomState():
    """Both generators' state as a JSON-able dict: ``{"host": <numpy bit generator state>, "device": {"seed":
    s, "counter": c}}``."""
    return {"host": _generator.bit_generator.state, "device": dict(_device)}


def _isWord(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value < 2**64


def setRandomState(state):
    """Restore a state returned by ``getRandomState()``; a state of another bit generator, or a device state that
    is not two integers in [0, 2**64), is a BackendError that restores nothing."""
    host = state.get("host") if isinstance(state, dict) else None
    deviceState = state.get("device") if isinstance(state, dict) else None
    expected = type(_generator.bit_generator).__name__
    if not isinstance(host, dict) or host.get("bit_generator") != expected or not isinstance(deviceState, dict) \
            or set(deviceState) != {"seed", "counter"} or not all(map(_isWord, deviceState.values())):
        raise BackendError(f"a random state must be {{'host': <{expected} state>, 'device': {{'seed': s, 'counter': "
                           f"c}}}} with s and c integers in [0, 2**64), got {state!r:.200}")
    bitGenerator = type(_generator.bit_generator)()
    try:
        bitGenerator.state = host
    except (TypeError, ValueError, KeyError, OverflowError) as error:  # OverflowError: out-of-range ints
        raise BackendError(f"cannot restore the {expected} random state: {error}") from error
    _generator.bit_generator.state = bitGenerator.state
    _device.update(seed=int(deviceState["seed"]), counter=int(deviceState["counter"]))
