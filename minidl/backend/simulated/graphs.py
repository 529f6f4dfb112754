"""Stream capture and CUDA graphs of the simulated device, as CuPy 14 exposes them (``Stream.begin_capture``,
``Stream.end_capture`` giving a ``cupy.cuda.Graph``, ``Graph.launch``), and CuPy's memory pools as far as a capture
needs them (``cupy.cuda.MemoryPool``, ``cupy.cuda.using_allocator``).

While a stream captures, a GPU runs nothing: the work queued on that stream becomes the graph's nodes, and each
launch of the graph runs them again, in order, on the memory they were captured on. The simulator must compute each
captured call to go on (its results shape what follows), so it computes it, keeps it as a node (the call, its
arguments and its results), and at ``end_capture`` puts device memory back as ``begin_capture`` found it, filling
what the capture allocated with 0xFF bytes (NaN, -1): after a capture a program sees what a GPU would show it,
nothing done. As on a GPU, inside a capture a device-to-host copy, a synchronize or a host-to-device copy raise
(CuPy's RuntimeError) and invalidate the capture (``end_capture`` then raises), and work queued from another stream
is refused (the simulated device captures one stream, with nothing joined to it).

A graph does not keep its memory alive, on a GPU or here: its nodes know their arrays by address and allocation
number, and a launch that would touch memory freed since the capture raises (a GPU would write memory since handed
to someone else). Memory allocated while a ``MemoryPool`` allocates (``with cupy.cuda.using_allocator(pool.malloc):``)
stays with the pool while the pool lives, as blocks CuPy's pool holds do: the home for a graph's temporaries.

Counts (``trace``): a capture counts nothing; a launch counts one ``GraphLaunch`` and each node as a launch marked
``graph``.
"""

import contextlib
import functools
import types

import numpy

from minidl.backend.simulated import trace
from minidl.backend.simulated.ndarray import (
    allocatingFrom,
    allocationCount,
    allocationOf,
    allocationsSince,
    liveBytes,
    ndarray,
    wrap,
)

POISON = 0xFF  # the byte that fills memory a capture allocated


class Capture:
    """The capture under way on ``stream`` (``currentStream()`` tells which stream queues work now): its nodes, the
    device memory it found, and whether it was invalidated."""

    def __init__(self, stream, currentStream):
        self.stream, self.currentStream, self.nodes, self.depth, self.launches = stream, currentStream, [], 0, 0
        self.invalid = None
        self.firstSerial = allocationCount()
        self.saved = [(first, serial, memory.copy()) for first, serial in allocationsSince(0)
                      if (memory := liveBytes(first, serial)) is not None]

    def captured(self, name):
        """A launch made inside a captured call (``work``); one outside any is a call the simulator cannot replay."""
        if self.depth == 0:
            raise RuntimeError(f"simulated device: {name} was launched during a capture outside any call the "
                               f"simulator records (a call missing its graphs.work)")
        self.launches += 1

    def refuse(self, what):
        self.invalid = what
        raise RuntimeError(f"the current stream is capturing, so {what} are disallowed "
                           f"(cudaErrorStreamCaptureUnsupported; the capture is invalidated)")

    def restore(self):
        """Device memory as it was when the capture began; what the capture allocated, poisoned."""
        for first, serial, saved in self.saved:
            if (memory := liveBytes(first, serial)) is not None:
                memory[...] = saved
        for first, serial in allocationsSince(self.firstSerial):
            if (memory := liveBytes(first, serial)) is not None:
                memory.fill(POISON)


def work(function):
    """``function`` (a call of the simulated device that may launch kernels), made capturable: inside a capture,
    a call that launched anything is kept as a node of the graph."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        capture = trace.capture()
        if capture is None or capture.depth:
            return function(*args, **kwargs)
        if capture.currentStream() is not capture.stream:
            capture.refuse("work queued from another stream than the capturing one")
        capture.depth, launches = 1, capture.launches
        try:
            result = function(*args, **kwargs)
        finally:
            capture.depth = 0
        if capture.launches > launches:
            capture.nodes.append(Node(function, args, kwargs, result, capture.launches - launches))
        return result

    return call


def capturable(cls):
    """``cls`` with each of its methods made capturable (``work``)."""
    for name, value in list(vars(cls).items()):
        if isinstance(value, types.FunctionType) and name != "__init__":
            setattr(cls, name, work(value))
    return cls


class Weak:
    """A device array known by its place (address, shape, strides, dtype) and its allocation, not held alive."""

    def __init__(self, array):
        host = array._host
        self.address = host.__array_interface__["data"][0]
        self.shape, self.strides, self.dtype = host.shape, host.strides, host.dtype
        found = allocationOf(self.address) if host.nbytes else None
        self.first, self.serial = found if found is not None else (None, None)

    def live(self):
        """The device array again, or None when its memory was freed since the capture."""
        if self.first is None:
            return wrap(numpy.empty(self.shape, self.dtype), owner=False)
        memory = liveBytes(self.first, self.serial)
        if memory is None:
            return None
        host = numpy.ndarray(self.shape, self.dtype, buffer=memory, offset=self.address - self.first,
                             strides=self.strides)
        return wrap(host, owner=False)

    def array(self):
        """The device array again; RuntimeError when its memory was freed since the capture."""
        array = self.live()
        if array is None:
            raise RuntimeError("a CUDA graph launch would touch device memory freed since its capture (a GPU would "
                               "read or write memory handed to someone else): keep every array a graph uses alive "
                               "while the graph lives")
        return array


def _replaced(value, kind, convert):
    """``value`` with each ``kind`` in it (also inside lists, tuples and dicts) replaced by ``convert`` of it."""
    if isinstance(value, kind):
        return convert(value)
    if type(value) in (list, tuple):
        return type(value)(_replaced(item, kind, convert) for item in value)
    if type(value) is dict:
        return {key: _replaced(item, kind, convert) for key, item in value.items()}
    return value


def _weak(value):
    return _replaced(value, ndarray, Weak)


def _strong(value):
    return _replaced(value, Weak, Weak.array)


def _resultArrays(value):
    """The arrays (device arrays or Weak ones) a call returned: itself, or those of a tuple it returned."""
    items = value if type(value) is tuple else (value,)
    return [item for item in items if isinstance(item, (ndarray, Weak))]


class Node:
    """One captured call: run again on the captured arguments, its fresh results copied where the captured call's
    results lie (a kernel's output written in place lies there already)."""

    def __init__(self, function, args, kwargs, result, launches):
        self.function, self.args, self.kwargs, self.launches = function, _weak(args), _weak(kwargs), launches
        self.results = _resultArrays(_weak(result))

    def run(self):
        fresh = _resultArrays(self.function(*_strong(self.args), **_strong(self.kwargs)))
        for captured, result in zip(self.results, fresh):
            target = captured.live()
            if target is not None and target._host.__array_interface__ != result._host.__array_interface__:
                target._host[...] = result._host


class Graph:
    """``cupy.cuda.Graph``: the work of one capture, launched as one call."""

    def __init__(self, nodes):
        self._nodes = nodes

    def launch(self, stream=None):
        """Run every node in order (counted: one graph launch, then each kernel as a launch of the graph)."""
        if trace.capture() is not None:
            trace.capture().refuse("graph launches inside a capture")
        trace.recordGraphLaunch(sum(node.launches for node in self._nodes))
        trace._device["inGraph"] = True
        try:
            for node in self._nodes:
                node.run()
        finally:
            trace._device["inGraph"] = False

    def upload(self, stream=None):
        return None


def beginCapture(stream, currentStream):
    if stream.ptr == 0:
        raise RuntimeError("cannot capture on the default (legacy) stream")
    if trace.capture() is not None:
        raise RuntimeError("simulated device: one stream captures at a time")
    trace._device["capture"] = Capture(stream, currentStream)


def endCapture(stream):
    capture = trace.capture()
    if capture is None or capture.stream is not stream:
        raise RuntimeError("cudaErrorIllegalState: the stream is not capturing")
    trace._device["capture"] = None
    capture.restore()
    if capture.invalid is not None:
        raise RuntimeError(f"cudaErrorStreamCaptureInvalidated: the capture was invalidated by {capture.invalid}")
    return Graph(capture.nodes)


class MemoryPool:
    """``cupy.cuda.MemoryPool``: while it allocates (``using_allocator(pool.malloc)``), every buffer made stays with
    it until ``free_all_blocks`` (a buffer still in use stays with its arrays) or the pool's end."""

    def __init__(self, allocator=None):
        self._blocks = []

    def _hold(self, host):
        self._blocks.append(host)

    def malloc(self, size):
        raise TypeError("the simulated device allocates through arrays: pass pool.malloc to using_allocator")

    def used_bytes(self):
        return sum(block.nbytes for block in self._blocks)

    total_bytes = used_bytes

    def free_all_blocks(self, stream=None):
        self._blocks = []


@contextlib.contextmanager
def using_allocator(allocator=None):
    """Allocate through ``allocator`` (a ``MemoryPool``'s ``malloc``) inside the block; None: CuPy's default."""
    pool = getattr(allocator, "__self__", None)
    if allocator is not None and not isinstance(pool, MemoryPool):
        raise TypeError("the simulated device takes a simulated MemoryPool's malloc as an allocator")
    with allocatingFrom(pool):
        yield
