"""Checks of values that live on the device (labels, indices, targets), without a host sync inside a training step.

On the CPU a check reads its values at once (reading costs nothing) and raises before anything changes. On a GPU
(and the simulated device) ``RangeCheck.note`` folds the values' min and max into a record on the device, one
thread of ``rangeKer`` keeping the first out-of-range batch, and the error is raised when the host next reads the
records: ``readChecks()``, which the Trainer calls after each macro-batch and at the end of each epoch (the
commands' loops at the end of each epoch). The kernels that consume such values clamp them, so a bad batch reads
no memory out of bounds before the read reports it.

    record = [1 once a batch was out of range, its min, its max, the bound it broke]   int64

``ValueCheck`` is the general form for conditions that are not an integer range (targets in [0, 1], rows summing to
1): the caller computes on the device a flag ``bad`` and the numbers its message names, and ``valueKer`` keeps the
first bad batch's numbers:

    record = [1 once a batch was bad, value_1, ..., value_n]   float64
"""

import weakref

import numpy

from minidl.backend.device import isGpu, toHost, xp
from minidl.backend.elementwise import Elementwise
from minidl.backend.tape import atEachLaunch, recordingNow


def _rangeNumpy(low, high, bound, record):
    if (low[0] < 0 or high[0] >= bound) and record[0] == 0:
        record[:] = 1, low[0], high[0], bound


rangeKer = Elementwise(
    "minidl_range_check",
    "raw T low, raw T high, int64 bound",
    "raw int64 record",
    "if ((low[0] < 0 || high[0] >= bound) && record[0] == 0) { record[0] = 1; record[1] = low[0]; "
    "record[2] = high[0]; record[3] = bound; }",
    _rangeNumpy,
)

def _valueNumpy(bad, values, count, record):
    if bad[0] and record[0] == 0:
        record[0] = 1
        record[1:count + 1] = values[:count]


valueKer = Elementwise(
    "minidl_value_check",
    "raw T bad, raw float64 values, int32 count",
    "raw float64 record",
    "if (bad[0] && record[0] == 0) { record[0] = 1; for (int k = 0; k < count; ++k) record[k + 1] = values[k]; }",
    _valueNumpy,
)

_checks = weakref.WeakSet()  # every RangeCheck with a record on the device


class RangeCheck:
    """Integers that must lie in [0, bound). ``fail(low, high, bound)`` raises the owner's error, naming them."""

    def __init__(self, fail):
        self.fail = fail
        self.record = None
        self.unread = False  # a batch was noted on the device since the last read
        self.replayed = False  # noted in a recorded step (minidl.backend.tape), whose replays note it unseen

    def note(self, values, bound):
        """Check ``values`` (an integer array) against [0, bound): now on the CPU, at the next read on a GPU."""
        if values.size == 0:
            return
        if not isGpu and not recordingNow():
            low, high = int(values.min()), int(values.max())
            if low < 0 or high >= bound:
                self.fail(low, high, bound)
            return
        if self.record is None:
            self.record = xp.zeros(4, dtype=numpy.int64)
            _checks.add(self)
        rangeKer(values.min().reshape(1), values.max().reshape(1), bound, self.record, size=1)
        self.unread = True
        self.replayed = self.replayed or recordingNow()
        atEachLaunch(lambda: setattr(self, "unread", True))  # a device graph's launches note it too

    def read(self):
        """Raise the owner's error if a batch since the last read was out of range (one copy of four numbers, none
        when nothing was noted since the last read)."""
        if not (self.unread or self.replayed):
            return
        self.unread = False
        failed, low, high, bound = (int(value) for value in toHost(self.record))
        if failed:
            self.record.fill(0)
            self.fail(low, high, bound)


class ValueCheck:
    """A condition on device values. ``note(bad, *values)``: ``bad`` a boolean device scalar (true when the batch
    breaks the condition), ``values`` the device scalars the message names; ``fail(*values)`` raises the owner's
    error with them as Python floats: at once on the CPU, at the next read on a GPU (the first bad batch's)."""

    def __init__(self, fail):
        self.fail = fail
        self.record = None
        self.unread = False  # a batch was noted on the device since the last read
        self.replayed = False  # noted in a recorded step (minidl.backend.tape), whose replays note it unseen

    def note(self, bad, *values):
        if not isGpu and not recordingNow():
            if bool(bad):
                self.fail(*(float(value) for value in values))
            return
        if self.record is None:
            self.record = xp.zeros(len(values) + 1, dtype=numpy.float64)
            _checks.add(self)
        numbers = xp.stack([xp.asarray(value, dtype=numpy.float64).reshape(()) for value in values])
        valueKer(xp.asarray(bad).reshape(1), numbers, len(values), self.record, size=1)
        self.unread = True
        self.replayed = self.replayed or recordingNow()
        atEachLaunch(lambda: setattr(self, "unread", True))  # a device graph's launches note it too

    def read(self):
        """Raise the owner's error if a batch since the last read was bad (one copy of the record, none when
        nothing was noted since the last read)."""
        if not (self.unread or self.replayed):
            return
        self.unread = False
        failed, *values = (float(value) for value in toHost(self.record))
        if failed:
            self.record.fill(0)
            self.fail(*values)


def readChecks():
    """Read every check's record on the device; the first that saw an out-of-range batch raises its error."""
    for check in list(_checks):
        check.read()
