"""What the simulated device did: every launch, product, transfer, sync and host random draw, and the memory
high-water mark, recorded while a ``Trace`` is active (``with recording() as trace:``).

A launch is one kernel the GPU would run: ``threads`` is its loop size (CuPy launches one thread per element of
that loop), ``bytesRead``/``bytesWritten`` what it moves through device memory (raw arrays counted whole: the
simulator cannot see which of their elements a kernel touches). A product is one cuBLAS call (also a launch),
with its FLOPs. A sync is anything that makes the host wait for the device: a device-to-host copy (``get``,
``asnumpy``, ``bool``/``float``/``int``/``item`` of a device array) or a stream, event or device synchronize; each
names the line of minidl (or of the caller, outside minidl) that caused it. Host-to-device copies say whether
their source was pageable or pinned host memory. A CUDA graph's launch (``graphs``) is one ``GraphLaunch`` (the
host's one call) followed by each of its kernels as a launch marked ``graph``; a stream capture counts nothing, since
the device runs nothing then. Counts are exact; times are not measured here (see ``gpumodel`` for the stated model
that predicts them).
"""

import collections
import contextlib
import os
import sys
from dataclasses import dataclass, field

_HERE = os.path.dirname(os.path.abspath(__file__))
_PACKAGE = os.path.dirname(os.path.dirname(_HERE))  # .../minidl
_BACKEND = os.path.dirname(_HERE)


@dataclass
class Launch:
    """One kernel launch: its name, its threads (the loop's size), the bytes it reads and writes."""

    name: str
    threads: int
    bytesRead: int
    bytesWritten: int
    largestArray: int = 0  # elements of the largest array it touches
    flops: int = 0  # products only: 2*m*n*k
    kind: str = "launch"
    math: str = ""  # products only: the cuBLAS math they run in, "fp32", "tf32", "fp16", "fp64" (computetype.py)
    graph: bool = False  # run as a node of a launched CUDA graph (the host launched the graph, not this kernel)


@dataclass
class Transfer:
    """A copy between host and device, or a wait for the device: its kind, bytes and the line that caused it."""

    kind: str  # "deviceToHost", "sync", "hostToDevice"
    nbytes: int
    where: str
    pinned: bool = False
    what: str = ""


@dataclass
class GraphLaunch:
    """One launch of a captured CUDA graph of ``nodes`` kernels (its kernels follow it as launches)."""

    nodes: int
    where: str
    kind: str = "graphLaunch"


@dataclass
class Trace:
    """Everything the simulated device did while this trace was active; ``events`` holds it all in order."""

    events: list = field(default_factory=list)
    launches: list = field(default_factory=list)
    syncs: list = field(default_factory=list)  # device-to-host copies and synchronizations
    hostToDevice: list = field(default_factory=list)
    randomDraws: list = field(default_factory=list)  # host random draws whose values reached the device
    graphLaunches: list = field(default_factory=list)
    memoryHighWater: int = 0
    _startMemory: int = 0

    @property
    def products(self):
        return [launch for launch in self.launches if launch.flops]

    @property
    def deviceToHost(self):
        return [event for event in self.syncs if event.kind == "deviceToHost"]

    @property
    def pageableCopies(self):
        return [event for event in self.hostToDevice if not event.pinned]

    def bytesMoved(self):
        """Bytes the launches read and wrote in device memory, plus the bytes copied either way."""
        launches = sum(launch.bytesRead + launch.bytesWritten for launch in self.launches)
        return launches + sum(event.nbytes for event in self.hostToDevice + self.syncs)

    def heaviest(self, count=10):
        """The kernels that move the most bytes, summed by name: [(name, launches, bytes, threads per launch)]."""
        byName = collections.defaultdict(lambda: [0, 0, 0])
        for launch in self.launches:
            entry = byName[launch.name]
            entry[0] += 1
            entry[1] += launch.bytesRead + launch.bytesWritten
            entry[2] = max(entry[2], launch.threads)
        ranked = sorted(byName.items(), key=lambda item: -item[1][1])[:count]
        return [(name, launches, moved, threads) for name, (launches, moved, threads) in ranked]

    def summary(self):
        """The counts as a dict of plain numbers (the keys of ``minidl profile --json``)."""
        return {
            "launches": len(self.launches),
            "products": len(self.products),
            "flops": sum(launch.flops for launch in self.launches),
            "syncs": len(self.syncs),
            "deviceToHost": len(self.deviceToHost),
            "hostToDevice": len(self.hostToDevice),
            "pageableCopies": len(self.pageableCopies),
            "hostRandomDraws": len(self.randomDraws),
            "graphLaunches": len(self.graphLaunches),
            "hostLaunches": len(self.launches) - sum(launch.graph for launch in self.launches),
            "bytes": self.bytesMoved(),
            "memoryHighWater": self.memoryHighWater,
        }


_active = []  # the traces recording now (nested recordings each see everything)
_memory = {"live": 0}
_device = {"capture": None, "inGraph": False}  # the stream capture under way (graphs.Capture), a graph running


def caller():
    """``file:line`` of the innermost frame outside the simulated device and the backend's transfer helpers:
    the line of minidl (or of the user's code) that asked for the device's values."""
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(_BACKEND) and "contextlib" not in path:
            if path.startswith(_PACKAGE):
                path = "minidl" + path[len(_PACKAGE):]
            return f"{path}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


def _append(field, event, inOrder=True):
    """Add ``event`` to ``field`` of every active trace (and to its ordered events, unless ``inOrder`` is False)."""
    for trace in _active:
        getattr(trace, field).append(event)
        if inOrder:
            trace.events.append(event)


def capture():
    """The stream capture under way (``graphs.Capture``), or None."""
    return _device["capture"]


def recordLaunch(name, threads, bytesRead, bytesWritten, largestArray=0, flops=0, math=""):
    if _device["capture"] is not None:  # captured, not run: the graph counts its nodes
        _device["capture"].captured(name)
    elif _active:
        _append("launches", Launch(name, int(threads), int(bytesRead), int(bytesWritten), int(largestArray),
                                   int(flops), math=math, graph=_device["inGraph"]))


def recordSync(kind, nbytes=0, what=""):
    if _device["capture"] is not None:
        _device["capture"].refuse("synchronous API calls (a device-to-host copy or a synchronize)")
    if _active:
        _append("syncs", Transfer(kind, int(nbytes), caller(), what=what))


def recordHostToDevice(nbytes, pinned):
    if _device["capture"] is not None:
        _device["capture"].refuse("H2D transfers")
    if _active:
        _append("hostToDevice", Transfer("hostToDevice", int(nbytes), caller(), pinned=pinned))


def recordGraphLaunch(nodes):
    if _active:
        _append("graphLaunches", GraphLaunch(int(nodes), caller()))


def recordRandomDraw(what, count):
    if _active:
        _append("randomDraws", Transfer("hostRandom", int(count), caller(), what=what), inOrder=False)


def allocated(nbytes):
    _memory["live"] += nbytes
    for trace in _active:
        trace.memoryHighWater = max(trace.memoryHighWater, _memory["live"] - trace._startMemory)


def freed(nbytes):
    _memory["live"] -= nbytes


def liveBytes():
    """Device bytes held now by simulated arrays."""
    return _memory["live"]


@contextlib.contextmanager
def recording():
    """Record what the simulated device does inside the block: ``with recording() as trace: ...``. The memory
    high-water mark counts from what was held when the block began."""
    trace = Trace(_startMemory=_memory["live"])
    _active.append(trace)
    try:
        yield trace
    finally:
        _active.remove(trace)
