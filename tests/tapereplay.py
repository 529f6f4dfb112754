"""A call of minidl's own C++ recorded by a tape and replayed on new data, as a captured step replays it."""

import numpy

from minidl.backend import xp
from minidl.backend.tape import Tape


def assertReplaysOnNewData(function, inputs, fresh, callName):
    """Record ``function(*inputs)`` on a tape, which must hold one call named ``callName``; replayed on ``fresh`` (as
    many arrays), the tape's output is ``function(*fresh)``'s, bit for bit. Returns the recorded calls' names."""
    tape = Tape()
    with tape.recording(xp):
        y = function(*[tape.input(array) for array in inputs])
    names = [getattr(call[0], "__name__", None) for call in tape.calls]
    assert names.count(callName) == 1, names
    tape.replay(*fresh)
    numpy.testing.assert_array_equal(y, function(*fresh))
    return names
