"""A tape: the array work of a block of code on the CPU, recorded once and replayed without the Python around it
(issue 25: a forward pass or a step for fixed shapes).

    tape = Tape()
    with tape.recording(xp):
        out = net(tape.input(sample))          # runs for real, and records
    tape.replay(newSample)                      # the same work on new data, into the same arrays: out holds it

While a tape records, three things record what they compute, each with how to compute it again into the same
memory:
- the backend's array namespace ``xp`` (``ArrayNamespace``) hands out recording versions of its functions; a new
  array they make is returned as a ``Traced`` array (a view of it), a view of an argument is not recorded;
- a ``Traced`` array records its operators (NumPy ufuncs, through ``__array_ufunc__``: ``@``, ``+=``, ``.sum()``),
  its copies, fills and stores; what it cannot record (a value read by the host: ``float(x)``, ``bool``,
  ``.item()``; a method computed in NumPy's C that no hook sees, such as ``argmax``) raises ``CaptureError``;
- ``Elementwise`` and ``Reduction`` calls are recorded whole (nothing inside them is traced).
Replay copies new data into the recorded inputs and runs the recorded calls in order on the arrays the recording
made, which the tape keeps alive: a replayed block writes where the recorded one wrote. Numbers are recorded as they
were, but those the block names live (``liveValues``: a step count, a random draw, a scheduled rate), which each
replay reads again. Work no hook sees (an operator on untraced arrays only) would replay stale, so whoever captures
compares two recordings (``Tape.follow``) and a replay with an ordinary run before trusting a tape
(``minidl.train.capturedstep``, ``minidl.nn.captured``).

Recording only on NumPy arrays: a device's counterpart is a CUDA graph captured on CuPy's stream
(``minidl.backend.devicegraph``).
"""

import contextlib

import numpy

from minidl.errors import BackendError


class CaptureError(BackendError):
    """The block does something a tape cannot replay (a host read of a device value, an unrecordable method)."""


class Recorder:
    """Which tape records now, and whether a recorded kernel is running (its own work is not traced); on a device,
    the live values of the CUDA graph being captured (``livevalues.LiveTable``)."""

    tape = None
    paused = False
    liveTable = None


def recordingNow():
    return Recorder.tape is not None and not Recorder.paused


def plain(value):
    """``value`` with every Traced array in it (also inside lists, tuples and dicts) as a plain ndarray view."""
    if isinstance(value, Traced):
        return value.view(numpy.ndarray)
    if type(value) in (list, tuple):
        return type(value)(plain(item) for item in value)
    if type(value) is dict:
        return {key: plain(item) for key, item in value.items()}
    return value


def traced(value):
    """A new array (or each array in a tuple) as a Traced view; anything else unchanged."""
    if type(value) is numpy.ndarray:
        return value.view(Traced)
    if type(value) is tuple:
        return tuple(traced(item) for item in value)
    return value


def arraysIn(value):
    if isinstance(value, numpy.ndarray):
        yield value
    elif type(value) in (list, tuple):
        for item in value:
            yield from arraysIn(item)
    elif type(value) is dict:
        for item in value.values():
            yield from arraysIn(item)


def root(array):
    """The array that owns ``array``'s memory (itself, or the base of a view of a view)."""
    while isinstance(array.base, numpy.ndarray):
        array = array.base
    return array


def sameValue(old, new):
    try:
        return bool(old == new) or (old != old and new != new)  # NaN is the same NaN
    except (TypeError, ValueError):
        return old is new


def isViewOf(result, sources):
    return any(numpy.may_share_memory(result, source) for source in sources)


def refuse(what):
    raise CaptureError(f"a captured block cannot {what}")


class Traced(numpy.ndarray):
    """A NumPy array whose work is recorded while a tape records; outside a recording an ordinary array."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        outs = kwargs.get("out")
        inputs, kwargs = plain(inputs), plain(kwargs)
        function = getattr(ufunc, method)
        if not recordingNow():
            result = function(*inputs, **kwargs)
        elif outs is None and method != "at":
            result = Recorder.tape.ownResult(function, inputs, kwargs)
        else:
            result = function(*inputs, **kwargs)
            Recorder.tape.add(function, inputs, kwargs, writes=kwargs["out"] if outs is not None else inputs[0])
        if outs is not None:
            return outs[0] if len(outs) == 1 else outs
        return traced(result)

    def __array_function__(self, func, types_, args, kwargs):
        if not recordingNow():
            return func(*plain(args), **plain(kwargs))
        return Recorder.tape.call(func, args, kwargs)

    def _reading(self, what):
        if recordingNow():
            refuse(f"read an array's value on the host ({what})")

    def __float__(self):
        self._reading("float")
        return float(self.view(numpy.ndarray))

    def __int__(self):
        self._reading("int")
        return int(self.view(numpy.ndarray))

    def __index__(self):
        self._reading("index")
        return self.view(numpy.ndarray).__index__()

    def __bool__(self):
        self._reading("bool")
        return bool(self.view(numpy.ndarray))

    def item(self, *args):
        self._reading("item")
        return self.view(numpy.ndarray).item(*args)

    def tolist(self):
        self._reading("tolist")
        return self.view(numpy.ndarray).tolist()

    def __getitem__(self, key):
        base, key = self.view(numpy.ndarray), plain(key)
        result = base[key]
        if not isinstance(result, numpy.ndarray):
            self._reading("one element")
            return result
        if recordingNow() and not numpy.may_share_memory(result, base):
            Recorder.tape.add(copyIndexed, (result, base, key), writes=result)
        return result.view(Traced)

    def __setitem__(self, key, value):
        base, key, value = self.view(numpy.ndarray), plain(key), plain(value)
        base[key] = value
        if recordingNow():
            Recorder.tape.add(base.__setitem__, (key, value), writes=base)

    def fill(self, value):
        base = self.view(numpy.ndarray)
        base.fill(value)
        if recordingNow():
            Recorder.tape.add(base.fill, (value,), writes=base)

    def copy(self, order="C"):
        base = self.view(numpy.ndarray)
        result = base.copy(order)
        if recordingNow():
            Recorder.tape.add(numpy.copyto, (result, base), writes=result)
        return result.view(Traced)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        base = self.view(numpy.ndarray)
        result = base.astype(dtype, order=order, casting=casting, copy=copy)
        if recordingNow() and not numpy.may_share_memory(result, base):
            Recorder.tape.add(numpy.copyto, (result, base), {"casting": "unsafe"}, writes=result)
        return result.view(Traced)

    def _maybeCopied(self, name, *args, **kwargs):
        """A method that returns a view when it can and a copy otherwise (reshape of a transposed array)."""
        base = self.view(numpy.ndarray)
        result = getattr(base, name)(*args, **kwargs)
        if recordingNow() and not numpy.may_share_memory(result, base):
            Recorder.tape.add(copyMethod, (result, base, name, args, kwargs), writes=result)
        return result.view(Traced)

    def reshape(self, *shape, order="C"):
        return self._maybeCopied("reshape", *shape, order=order)

    def ravel(self, order="C"):
        return self._maybeCopied("ravel", order)

    def flatten(self, order="C"):
        return self._maybeCopied("flatten", order)


def _unrecordable(name):
    def method(self, *args, **kwargs):
        if recordingNow():
            refuse(f"call ndarray.{name} (computed where no hook records it)")
        return getattr(self.view(numpy.ndarray), name)(*args, **kwargs)

    method.__name__ = name
    return method


for _name in ("argmax", "argmin", "argsort", "argpartition", "sort", "partition", "dot", "take", "put", "repeat",
              "nonzero", "searchsorted", "compress", "choose", "cumsum", "cumprod", "round", "trace", "tobytes",
              "tofile", "byteswap", "resize", "setfield", "getfield", "diagonal", "ptp", "std", "var"):
    setattr(Traced, _name, _unrecordable(_name))


def isNumber(value):
    return isinstance(value, (int, float, numpy.integer, numpy.floating)) and not isinstance(value, bool)


def liveValues(values, read):
    """``values`` (a tuple of numbers the block passes to kernels: a step count, a random draw's seed and counter,
    an optimizer's hyperparameters; other items, such as arrays, pass through as they are),
    with ``read()`` giving them anew: outside a recording ``values`` as they are; in one, copies that a replay
    replaces by the numbers ``read()`` returns then (its reads run in the recording's order at each replay); in a
    device graph's capture, ``LiveValue``s that each launch of the graph reads anew (``minidl.backend.livevalues``)."""
    if recordingNow():
        return Recorder.tape.addLive(values, read)
    return values if Recorder.liveTable is None else Recorder.liveTable.add(values, read)


def atEachLaunch(action):
    """While a device graph captures the block: run ``action()`` (host bookkeeping of the block, such as a device
    check marked unread) again before each later launch of the graph, in order with the live values' reads."""
    if Recorder.liveTable is not None:
        Recorder.liveTable.add((), lambda: action() or ())


def fill(array, value):
    """``array.fill(value)`` of any array, recorded when a tape records (an untraced array's methods are not seen:
    the optimizer's flat gradients, zeroed each step)."""
    array.fill(value)
    if recordingNow():
        Recorder.tape.add(array.fill, (value,), writes=array)


def copyIndexed(result, base, key):
    numpy.copyto(result, base[key])


def copyMethod(result, base, name, args, kwargs):
    numpy.copyto(result, getattr(base, name)(*args, **kwargs))


def recompute(result, function, args, kwargs):
    numpy.copyto(result, function(*args, **kwargs))


def callName(function, args):
    """A recorded call's name: its function's (a ufunc's method with the ufunc's: "add.__call__"), or for a
    recomputed result the function that computes it."""
    function = args[1] if function is recompute else function
    owner, name = getattr(function, "__self__", None), getattr(function, "__name__", repr(function))
    return f"{owner.__name__}.{name}" if isinstance(owner, numpy.ufunc) else name


WHOLE_WRITERS = {numpy.copyto, copyIndexed, copyMethod, recompute}  # calls that write their first argument whole


ALLOCATORS = {"empty", "empty_like"}  # new memory whose contents the block must write itself
COPIES = {"array", "asarray", "ascontiguousarray", "asfortranarray", "copy", "asanyarray"}
WRITE_FIRST = {"copyto", "put", "place", "putmask", "fill_diagonal"}  # functions writing into their first argument
WITH_OUT = {"sum", "mean", "max", "min", "amax", "amin", "prod", "clip", "dot", "matmul", "concatenate", "take",
            "einsum", "cumsum", "around", "round", "any", "all", "nansum"}


class Tape:
    """The recorded calls of one block, replayed in order; the arrays they name are the block's arrays."""

    def __init__(self):
        self.calls, self.writes, self.inputs = [], [], []
        self.sources, self.live = [], {}  # live values: (read, objects) in order; id -> (source, element)
        self.slots = []  # (call, argument, source, element): an argument a replay reads again
        self.allocated = set()  # the memory the block allocated through xp (empty, empty_like): its own

    def input(self, sample):
        """A buffer for one of the block's inputs, holding a copy of ``sample``: replay copies new data into it."""
        buffer = numpy.array(sample, copy=True)
        self.inputs.append(buffer)
        return buffer.view(Traced)

    @contextlib.contextmanager
    def recording(self, namespace):
        """Run the block for real and record it, with ``namespace`` (the backend's ``xp``) handing out recording
        functions meanwhile; one tape records at a time."""
        if Recorder.tape is not None:
            raise CaptureError("a tape is already recording: captures do not nest")
        if namespace.module is not numpy:
            raise CaptureError("a tape records NumPy arrays only (on a GPU a step is captured as a CUDA graph)")
        Recorder.tape, Recorder.paused = self, False
        try:
            with namespace.replaced(recordingVersion):
                yield self
        finally:
            Recorder.tape = None

    def replay(self, *data):
        """Copy ``data`` into the inputs (same shapes and dtypes as recorded: checked) and run the recorded calls."""
        if len(data) != len(self.inputs):
            raise CaptureError(f"the block was recorded with {len(self.inputs)} inputs, got {len(data)}")
        for buffer, value in zip(self.inputs, data):
            if getattr(value, "shape", None) != buffer.shape or getattr(value, "dtype", None) != buffer.dtype:
                raise CaptureError(f"the block was recorded for an input of shape {buffer.shape} and dtype "
                                   f"{buffer.dtype}, got {getattr(value, 'shape', type(value).__name__)} "
                                   f"{getattr(value, 'dtype', '')}")
        for buffer, value in zip(self.inputs, data):
            numpy.copyto(buffer, value)
        if self.slots:
            values = [read() for read, _ in self.sources]  # in the recording's order: a read may advance a counter
            for call, position, source, element in self.slots:
                function, args, kwargs = self.calls[call]
                args = (*args[:position], values[source][element], *args[position + 1:])
                self.calls[call] = function, args, kwargs
        for function, args, kwargs in self.calls:
            function(*args, **kwargs)

    def follow(self, earlier):
        """Compare this recording with ``earlier``, the same block recorded one call before: refused
        (CaptureError) where they differ in their sequence of calls or in an argument that is not live (a number
        that changes from step to step and that no ``liveValues`` named), and where this recording read an array
        that it neither made nor kept from the earlier one (a value computed where no hook saw it, which a replay
        would read stale)."""
        if len(self.calls) != len(earlier.calls):
            refuse(f"change its work from call to call ({len(earlier.calls)} recorded calls, then {len(self.calls)})")
        made = {id(root(array)) for array in self.inputs} | self.allocated
        liveArgs = {(call, position) for call, position, _, _ in self.slots}
        for index, ((before, beforeArgs, beforeKw), (now, nowArgs, nowKw)) in enumerate(zip(earlier.calls,
                                                                                            self.calls)):
            name = callName(now, nowArgs)
            if callName(before, beforeArgs) != name or len(beforeArgs) != len(nowArgs):
                refuse(f"change its work from call to call (call {index}: {name})")
            written = self.writes[index] if now in WHOLE_WRITERS else nowKw.get("out")  # written, not read
            made.update(id(root(array)) for array in arraysIn(written))
            for position, (old, new) in enumerate(zip(beforeArgs, nowArgs)):
                if (index, position) not in liveArgs:
                    self._sameArgument(old, new, made, f"call {index} ({name})")
            self._sameArgument({**getattr(before, "kwargs", {}), **beforeKw},  # a bound call keeps its own
                               {**getattr(now, "kwargs", {}), **nowKw}, made, f"call {index} ({name})")
            made.update(id(root(array)) for array in arraysIn(self.writes[index]))

    def _sameArgument(self, old, new, made, where):
        if isinstance(new, numpy.ndarray):
            if not isinstance(old, numpy.ndarray) or (old.shape, old.dtype) != (new.shape, new.dtype):
                refuse(f"change its arrays from call to call ({where})")
            if root(old) is not root(new) and id(root(new)) not in made:
                refuse(f"read an array made where no hook saw it ({where}): a replay would read it stale")
        elif type(new) in (list, tuple) and type(old) is type(new) and len(old) == len(new):
            for oldItem, newItem in zip(old, new):
                self._sameArgument(oldItem, newItem, made, where)
        elif type(new) is dict and type(old) is dict and old.keys() == new.keys():
            for key in new:
                self._sameArgument(old[key], new[key], made, where)
        elif not (callable(new) and callable(old)) and not (type(old) is type(new) and sameValue(old, new)):
            refuse(f"take an argument that changes from call to call ({where}: {old!r}, then {new!r})")

    def add(self, function, args=(), kwargs=None, writes=None):
        """Record a call, with the arrays it writes (an array, a tuple of them, or None)."""
        for position, arg in enumerate(args):
            if id(arg) in self.live and self.sources[self.live[id(arg)][0]][1][self.live[id(arg)][1]] is arg:
                self.slots.append((len(self.calls), position, *self.live[id(arg)]))
        self.calls.append((function, args, kwargs or {}))
        self.writes.append(writes)

    def addLive(self, values, read):
        """Values a replay must read again (``liveValues``): each a new object, known by its identity."""
        values = tuple(numpy.array(value, dtype=type(value) if isinstance(value, numpy.generic) else None)[()]
                       if isNumber(value) else value for value in values)
        for element, value in enumerate(values):
            if isNumber(value):
                self.live[id(value)] = (len(self.sources), element)
        self.sources.append((read, values))
        return values

    def ownResult(self, function, inputs, kwargs):
        """Run a ufunc (or ufunc method) that makes its result, and record it writing into that result again; a
        result over every axis (a NumPy scalar) is kept as a 0-d array."""
        result = function(*inputs, **kwargs)
        if isinstance(result, numpy.generic):
            result = numpy.array(result)
        self.add(function, inputs, {**kwargs, "out": result}, writes=result)
        return result

    def kernel(self, kernel, args, kwargs):
        """An Elementwise or Reduction call: run (its inside untraced) and recorded whole, as the call bound to
        these arguments (``kernel.bind``: a replay then skips the kernel's Python checks) where it runs compiled."""
        args = plain(args)
        Recorder.paused = True
        try:
            result = kernel(*args, **kwargs)
            bound = kernel.bind(args, **kwargs)
        finally:
            Recorder.paused = False
        liveBefore = len(self.slots)
        self.add(bound or kernel, args, {} if bound else kwargs, writes=result)  # a bound call keeps its keywords
        if bound is not None and len(self.slots) > liveBefore:
            bound.readsLiveScalars()
        return traced(result)

    def call(self, function, args, kwargs):
        """A NumPy function called with Traced arrays or through the namespace: run, and recorded as what computes
        its result again into the same memory; a view of an argument is not recorded."""
        outs = kwargs.get("out")
        args, kwargs = plain(args), plain(kwargs)
        name = getattr(function, "__name__", "")
        if outs is not None:
            function(*args, **kwargs)
            self.add(function, args, kwargs, writes=kwargs["out"])
            return outs
        if isinstance(function, numpy.ufunc) or name in WITH_OUT:
            return traced(self.ownResult(function, args, kwargs))
        result = function(*args, **kwargs)
        sources = list(arraysIn((args, kwargs)))
        if isinstance(result, numpy.ndarray):
            if name in ALLOCATORS:
                self.allocated.add(id(root(result)))
            elif not isViewOf(result, sources):
                if name in COPIES and args and isinstance(args[0], numpy.ndarray):
                    self.add(numpy.copyto, (result, args[0]), {"casting": "unsafe"}, writes=result)
                else:
                    self.add(recompute, (result, function, args, kwargs), writes=result)
            return traced(result)
        if result is None and sources:
            if name not in WRITE_FIRST:
                refuse(f"call {name} on arrays (what it writes is not known)")
            self.add(function, args, kwargs, writes=args[0])
            return None
        if isinstance(result, (tuple, list)) and any(isinstance(item, numpy.ndarray) for item in result):
            if not all(isViewOf(item, sources) for item in result):
                refuse(f"call {name}, which makes several new arrays")
            return type(result)(traced(item) for item in result)
        if isinstance(result, numpy.generic) and sources:  # a number of arrays (vdot): kept as a 0-d array
            result = numpy.array(result)
            self.add(recompute, (result, function, args, kwargs), writes=result)
            return traced(result)
        return result


def recordingVersion(function):
    def call(*args, **kwargs):
        if not recordingNow():
            return function(*args, **kwargs)
        return Recorder.tape.call(function, args, kwargs)

    call.__name__ = getattr(function, "__name__", "function")
    return call
