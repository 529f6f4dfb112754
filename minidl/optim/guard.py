"""The non-finite guard, the part of an Optimizer that keeps a step with a NaN or ±inf gradient from changing
anything, on the device: after the hooks, before the rule, each flat gradient buffer is checked there, and the
verdict is a flag the update kernels read (``skip``, the ``raw int32 skip`` argument of ``minidl.optim.rule``'s
kernels): a step with a non-finite gradient changes no parameter and no state, in the same launches that would have
changed them, and the host reads a record of it when it chooses (no sync inside a step).

    skip   = [1 if this step changes nothing]                                     int32, read by every update kernel
    record = [steps that changed nothing since the last read, the first bad step, its group, its flat index]  int64

Per step and group: two Reductions (``firstNonFiniteKer``) find the flat index of the first NaN or ±inf entry of
each of PARTS rows of the gradient buffer and of its last few entries (the buffer's size where there is none: rows,
so that a GPU reduces with PARTS blocks, not one), a third (``firstOfKer``) the least of those PARTS + 1
candidates, then one launch of one thread (``guardKer``, which reads that number only) folds it into skip and
record. ``sticky`` (the "raise" mode): once a bad step is
recorded, every step until the read changes nothing too, so the error raised at the read finds everything as it
was before the bad step.

The host reads the record (``readGuard()``) after every step by default; inside ``deferGuard()`` (the Trainer's
epochs, the commands' loops) only every ``syncEvery`` steps (None: never by itself) and wherever the loop calls
``readGuard()`` (the Trainer: after each macro-batch and at the end of each epoch). At a read, the steps that
changed nothing are taken off ``t`` and counted in ``skippedSteps`` ("skip"), or an OptimizerError names the
Variable and the step of the first non-finite gradient ("raise": every step from that one on changed nothing). A
dynamic loss scaler decides its scale on the device from the same flag (``LossScaler.update``), so it needs no read
either; its skipped steps are counted in ``skippedSteps`` at the read. Between a skipped step and the read, the
host's ``t`` counts it; a rule whose step depends on the count (Adam's bias correction) takes the true one on the
device, ``t - record[0]``, so a skipped step shifts nothing after it.
"""

import contextlib

import numpy

from minidl.backend import Elementwise, Reduction, toHost, xp
from minidl.backend.tape import liveValues
from minidl.errors import OptimizerError
from minidl.optim.rule import Count

NON_FINITE = ("raise", "skip", "off")


PARTS = 256  # rows of a gradient buffer reduced at once: on a GPU, 256 blocks of 512 threads


def _firstNonFiniteNumpy(grad, size, rowLength, offset, where, axis, keepdims):
    for row, values in enumerate(grad.reshape(where.size, -1)):
        bad = numpy.flatnonzero(~numpy.isfinite(values))
        where[row] = offset + row * rowLength + bad[0] if bad.size else size


firstNonFiniteKer = Reduction(
    "minidl_first_nonfinite",
    "T grad, int64 size, int64 rowLength, int64 offset",
    "int64 where",
    "isfinite(grad) ? size : offset + (long long)_i * rowLength + (long long)_J",
    "min(a, b)",
    "where = a",
    "size",
    _firstNonFiniteNumpy,
)


def _firstOfNumpy(candidates, first, axis, keepdims):
    first[...] = candidates.min()


firstOfKer = Reduction("minidl_first_of", "int64 candidates", "int64 first", "candidates", "min(a, b)", "first = a",
                       "0x7fffffffffffffffLL", _firstOfNumpy)


def firstNonFinite(flat):
    """A one-element int64 device array: the index of the first NaN or ±inf of the 1-D float array ``flat``, or its
    size where there is none. Three Reductions: the first of each of PARTS rows (``flat`` seen as PARTS rows, so a
    GPU reduces it with PARTS blocks), of its last ``flat.size % PARTS`` entries, and the least of those."""
    rowLength = flat.size // PARTS
    candidates = xp.empty((PARTS + 1,), numpy.int64)
    firstNonFiniteKer(flat[:PARTS * rowLength].reshape(PARTS, rowLength), flat.size, rowLength, 0,
                      candidates[:PARTS], axis=1)
    firstNonFiniteKer(flat[PARTS * rowLength:].reshape(1, -1), flat.size, 0, PARTS * rowLength, candidates[PARTS:],
                      axis=1)
    return firstOfKer(candidates, xp.empty((1,), numpy.int64), axis=0, keepdims=True)


def _guardNumpy(where, size, step, group, first, last, sticky, skip, record):
    if first:
        skip[0] = 1 if sticky and record[0] > 0 else 0
    if where[0] < size:
        skip[0] = 1
        if record[1] == 0:
            record[1:] = step, group, where[0]
    if last and skip[0]:
        record[0] += 1


guardKer = Elementwise(
    "minidl_nonfinite_guard",
    "raw int64 where, int64 size, int64 step, int64 group, int32 first, int32 last, int32 sticky",
    "raw int32 skip, raw int64 record",
    "if (first) skip[0] = (sticky && record[0] > 0) ? 1 : 0; "
    "if (where[0] < size) { skip[0] = 1; if (record[1] == 0) { record[1] = step; record[2] = group; "
    "record[3] = where[0]; } } "
    "if (last && skip[0]) record[0] += 1",
    _guardNumpy,
)


class NonFiniteGuard:
    """The guard's part of an Optimizer: ``nonFinite``, ``syncEvery``, ``skippedSteps``, the device flag and record
    (``skip``, ``record``), ``readGuard`` and ``deferGuard``, over the optimizer's ``groups``."""

    skippedSteps = Count('The number of steps that changed nothing for non-finite gradients (``nonFinite = "skip"``, '
                         "or a dynamic loss scaler), counted when the guard is read.")

    @property
    def nonFinite(self):
        """What a step does when a gradient holds NaN or ±inf after the hooks: "raise" (an OptimizerError at the
        read, naming the first such Variable; nothing changed from that step on), "skip" (parameters and state
        untouched, ``skippedSteps`` counted at the read) or "off" (no check). A dynamic loss scaler always skips
        and backs off instead."""
        return self._nonFinite

    @nonFinite.setter
    def nonFinite(self, mode):
        if mode not in NON_FINITE:
            raise OptimizerError(f"nonFinite must be one of {NON_FINITE}, got {mode!r}")
        self._nonFinite = mode

    def resetGuard(self):
        """A clear flag and record on the device and nothing unread (at construction and at every ``setupOn``)."""
        self.skip = xp.zeros(1, dtype=numpy.int32)
        self.record = xp.zeros(4, dtype=numpy.int64)
        self.unread = 0

    def clearGuard(self):
        """Forget what the guard recorded and no read has taken (a loaded state replaces the steps it is about), in
        place: a captured step reads these arrays."""
        self.skip.fill(0)
        self.record.fill(0)
        self.unread = 0

    def _dynamicScale(self):
        return self.lossScaler is not None and self.lossScaler.dynamic

    def checkGradients(self):
        """Fold this step's flat gradient buffers into the flag and the record, on the device (no sync); returns
        whether the step is guarded (``nonFinite`` is not "off", or a dynamic loss scaler)."""
        dynamic = self._dynamicScale()
        guarded = self.nonFinite != "off" or dynamic
        if not guarded:
            if self.unread:
                self.readGuard()  # steps guarded before the guard was turned off
            return False
        sticky = int(self.nonFinite == "raise" and not dynamic)
        last = len(self.groups) - 1
        step, = liveValues((self.t + 1,), lambda: (self.t + 1,))  # read again by a replayed step
        for index, group in enumerate(self.groups):
            flat = group.grad.reshape(-1)
            guardKer(firstNonFinite(flat), flat.size, step, index, int(index == 0), int(index == last), sticky,
                     self.skip, self.record, size=1)
        return True

    def guardStepped(self, guarded):
        """After a step's update launches (a dynamic loss scaler's update among them): read the guard where
        it must be read now (outside ``deferGuard``, every ``syncEvery`` steps inside it). Returns ``update``'s
        value: False when the step was skipped, True when it was taken, None when the verdict is still on the
        device."""
        self.unread += guarded
        if guarded and (not self.deferred or (self.syncEvery and self.unread >= self.syncEvery)):
            return self.readGuard() == 0
        return True if not guarded else None

    def readGuard(self):
        """Read what the non-finite guard recorded on the device since the last read (one copy of four numbers: a
        sync on a GPU); returns the number of steps that changed nothing, taken off ``t``. "skip" counts them in
        ``skippedSteps`` (a dynamic loss scaler has backed off on the device already); "raise" raises an
        OptimizerError naming the Variable and the step of the first non-finite gradient."""
        if not self.unread:
            return 0
        dynamic = self._dynamicScale()
        skipped, step, group, index = (int(value) for value in toHost(self.record))
        if skipped:
            self.skip.fill(0)
            self.record.fill(0)
        self.unread = 0
        self.t -= skipped
        if not skipped:
            return 0
        if self.nonFinite == "raise" and not dynamic:
            name = next(span.name for span in self.groups[group].spans if span.start <= index < span.stop)
            later = f" and the {skipped - 1} after it" if skipped > 1 else ""
            raise OptimizerError(
                f"Variable {name!r} has a non-finite gradient (NaN or inf) at step {step}: that step{later} changed "
                "nothing (a diverging run: lower the learning rate, clip the gradients, or set "
                "optimizer.nonFinite = 'skip')"
            )
        self.skippedSteps += skipped
        return skipped

    @contextlib.contextmanager
    def deferGuard(self):
        """Within it, ``update()`` leaves the guard's record on the device (read every ``syncEvery`` steps, or
        by the loop's own ``readGuard()``); on leaving it, the record is read."""
        previous, self.deferred = self.deferred, True
        try:
            yield self
        finally:
            self.deferred = previous
        self.readGuard()
