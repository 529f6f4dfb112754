"""Live values of a captured CUDA graph: the numbers a step passes its kernels that change from step to step (a step
count, a random draw's seed and counter, a scheduled learning rate), kept in device memory so that one graph serves
every step.

A graph freezes the arguments of the kernels it captured. So while a ``DeviceGraph`` captures, ``liveValues(values,
read)`` (``minidl.backend.tape``) gives each number as a ``LiveValue``; a kernel called with one (``Elementwise``)
reads it from a slot of the ``LiveTable``'s device buffer instead (its live variant: the parameter raw, its value
``slot[0]``), and before each launch of the graph the table runs the ``read`` functions again, in the order of the
capture, and copies the numbers they give into their slots: one copy from page-locked memory, queued before the
graph on the same stream. A number reaches its kernel as it would as an argument: converted to the parameter's
dtype on the host (``hostkernel.scalarType``: one that does not fit is refused), so a replayed step computes with
the very bits of an ordinary one.
"""

import numpy

from minidl.backend.device import cupyxModule, xp
from minidl.backend.hostkernel import scalarType
from minidl.backend.tape import isNumber
from minidl.errors import BackendError

SLOT_BYTES = 8  # every slot starts at a multiple of the widest dtype a kernel scalar takes


class CaptureLiveError(BackendError):
    """A live value used on the host during a capture (a graph cannot replay host arithmetic on it)."""


class LiveValue:
    """One number of a captured step that each launch of its graph reads anew; ``value`` is this launch's."""

    __slots__ = ("table", "value")

    def __init__(self, table, value):
        self.table, self.value = table, value

    def slot(self, dtype):
        """The one-element device array this number is read from by kernels taking it as ``dtype``."""
        return self.table.slot(self, numpy.dtype(dtype))

    def _host(self, *args):
        raise CaptureLiveError(f"a captured device step used its live value {self.value!r} on the host: only kernels "
                               f"may take it (a graph replays device work alone)")

    __float__ = __int__ = __index__ = __bool__ = __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _host
    __truediv__ = __rtruediv__ = __eq__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _host

    def __repr__(self):
        return f"LiveValue({self.value!r})"


class LiveTable:
    """The live values of one capture: their ``read`` functions in the capture's order, and their slots in one
    device buffer of ``size`` bytes (allocated before the capture)."""

    def __init__(self, size=4096):
        self.size, self.used = size, 0
        self.device = xp.zeros(size, dtype=numpy.uint8)
        self.reads = []  # (read, the items it gave: LiveValue for a number, the item itself otherwise)
        self.slots = {}  # (id of a LiveValue, dtype) -> (the LiveValue, byte offset)
        self.queued = []  # (event, pinned buffer) of each copy to the slots the device may not have made yet

    def add(self, values, read):
        """``values`` with each number as a LiveValue, which ``read()`` renews at each launch."""
        items = tuple(LiveValue(self, value) if isNumber(value) else value for value in values)
        self.reads.append((read, items))
        return items

    def slot(self, live, dtype):
        key = (id(live), dtype)
        if key not in self.slots:
            offset = -(-self.used // SLOT_BYTES) * SLOT_BYTES
            if offset + dtype.itemsize > self.size:
                raise BackendError(f"a captured step passes its kernels more live values than {self.size} bytes hold")
            self.slots[key], self.used = (live, offset), offset + dtype.itemsize
        _, offset = self.slots[key]
        return self.device[offset:offset + dtype.itemsize].view(dtype)

    def write(self, renew=True):
        """This launch's numbers into their slots: each ``read()`` run again in order (``renew``), or the numbers
        of the capture (its own step's, for the graph's first launch)."""
        if renew:
            for read, items in self.reads:
                for item, value in zip(items, read()):
                    if isinstance(item, LiveValue):
                        item.value = value
        if not self.used:
            return
        # The copy is asynchronous: the device reads the pinned buffer when it reaches the copy, so the buffer is
        # held until the copy's event is done (freed at once, CuPy's pinned pool would hand it to the next launch,
        # whose numbers the copy would then read). Asking an event is no sync.
        self.queued = [(event, buffer) for event, buffer in self.queued if not event.done]
        numbers = []
        for (_, dtype), (live, offset) in self.slots.items():
            try:  # as a kernel types a scalar argument: one that does not fit is refused, before anything runs
                numbers.append((offset, dtype, scalarType(dtype)(live.value)))
            except (OverflowError, ValueError) as error:
                raise BackendError(f"a captured step's live value does not fit {dtype}: {live.value!r}") from error
        host = cupyxModule().empty_pinned((self.used,), dtype=numpy.uint8)
        for offset, dtype, number in numbers:
            host[offset:offset + dtype.itemsize].view(dtype)[0] = number
        stream = xp.cuda.get_current_stream()
        self.device[:self.used].set(host, stream=stream)
        self.queued.append((stream.record(), host))
