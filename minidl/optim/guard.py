"""The non-finite guard's device side: a step's gradients are checked on the device, the verdict is a flag the
update kernels read (a step with a NaN or ±inf gradient changes no parameter and no state, in the same launches
that would have changed them), and a record the host reads when it chooses (no sync inside a step).

    skip   = [1 if this step changes nothing]                                     int32, read by every update kernel
    record = [steps that changed nothing since the last read, the first bad step, its group, its flat index]  int64

Per step and group: ``bad = ~isfinite(grad)`` (float16: the exponent bits all set), two reductions, ``bad.any()``
and ``where = argmax(bad)`` (the first non-finite entry, or 0), then one launch of one thread (``guardKer``, which
reads those two numbers only) folds them into skip and record. ``sticky`` (the "raise" mode): once a bad step is
recorded, every step until the read changes nothing too, so the error raised at the read finds everything as it
was before the bad step.
"""

import numpy

from minidl.backend import Elementwise, toHost, xp

HALF_EXPONENT = 0x7C00  # the exponent bits of a float16; all of them set: inf or NaN


def _guardNumpy(bad, where, step, group, first, last, sticky, skip, record):
    if first:
        skip[0] = 1 if sticky and record[0] > 0 else 0
    if bad[0]:
        skip[0] = 1
        if record[1] == 0:
            record[1:] = step, group, where[0]
    if last and skip[0]:
        record[0] += 1


guardKer = Elementwise(
    "minidl_nonfinite_guard",
    "raw bool bad, raw int64 where, int64 step, int64 group, int32 first, int32 last, int32 sticky",
    "raw int32 skip, raw int64 record",
    "if (first) skip[0] = (sticky && record[0] > 0) ? 1 : 0; "
    "if (bad[0]) { skip[0] = 1; if (record[1] == 0) { record[1] = step; record[2] = group; "
    "record[3] = where[0]; } } "
    "if (last && skip[0]) record[0] += 1",
    _guardNumpy,
)


def nonFinite(flat):
    """A bool array: True where the float array ``flat`` holds NaN or ±inf."""
    if flat.dtype == numpy.float16:
        return (flat.view(numpy.uint16) & HALF_EXPONENT) == HALF_EXPONENT
    return ~xp.isfinite(flat)


class NonFiniteGuard:
    """The flag and record of one optimizer, on its device."""

    def __init__(self):
        self.skip = xp.zeros(1, dtype=numpy.int32)
        self.record = xp.zeros(4, dtype=numpy.int64)

    def check(self, grads, step, sticky):
        """Fold step ``step``'s flat gradient buffers ``grads`` into the flag and the record, on the device."""
        last = len(grads) - 1
        for index, grad in enumerate(grads):
            bad = nonFinite(grad.reshape(-1))
            if bad.size == 0:
                bad = xp.zeros(1, dtype=numpy.bool_)
            where = xp.argmax(bad).reshape(1).astype(numpy.int64, copy=False)
            guardKer(bad.any().reshape(1), where, step, index, int(index == 0), int(index == last), int(sticky),
                     self.skip, self.record, size=1)

    def read(self):
        """(steps that changed nothing, the first bad step, its group, its flat index) since the last read, and
        the record cleared: one copy of four numbers to the host (a sync on a GPU)."""
        skipped, step, group, index = (int(value) for value in toHost(self.record))
        if skipped:
            self.clear()
        return skipped, step, group, index

    def clear(self):
        self.skip.fill(0)
        self.record.fill(0)
