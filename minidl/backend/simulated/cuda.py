"""``cupy.cuda`` of the simulated device: one device, streams and events that run in order (everything queued has
run when the call returns), stream capture into CUDA graphs (``graphs``), page-locked host arrays, and no NCCL.

What makes the host wait is counted as a sync (``Stream.synchronize``, ``Event.synchronize``,
``Device.synchronize``), with the line that asked for it; page-locked arrays are ``pinned``'s.
"""

import types

from minidl.backend.simulated import graphs, trace


class Event:
    """A point in a stream's work; it has always completed here (work runs when queued)."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.ptr = id(self)

    def record(self, stream=None):
        return None

    def synchronize(self):
        trace.recordSync("sync", 0, "Event.synchronize")

    done = property(lambda self: True)


class Stream:
    """A CUDA stream: ``with stream:`` makes it current; work runs in order, at once."""

    _current = []

    def __init__(self, null=False, non_blocking=False, ptds=False):
        self.ptr = 0 if null else id(self)

    def __enter__(self):
        Stream._current.append(self)
        return self

    def __exit__(self, *exc):
        Stream._current.pop()

    def use(self):
        Stream._current[:] = [self]
        return self

    def synchronize(self):
        trace.recordSync("sync", 0, "Stream.synchronize")

    def begin_capture(self, mode=None):
        """Capture the work queued on this stream into a graph (``graphs``); the null stream cannot."""
        graphs.beginCapture(self, get_current_stream)

    def end_capture(self):
        """The ``Graph`` of the work captured since ``begin_capture``."""
        return graphs.endCapture(self)

    def is_capturing(self):
        capture = trace.capture()
        return capture is not None and capture.stream is self

    def record(self, event=None):
        event = Event() if event is None else event
        event.record(self)
        return event

    def wait_event(self, event):
        return None

    done = property(lambda self: True)


_nullStream = Stream(null=True)


def get_current_stream(device_id=-1):  # noqa: N802 - CuPy's name
    return Stream._current[-1] if Stream._current else _nullStream


class Device:
    """The simulated device (there is one: id 0)."""

    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)
        if self.id != 0:
            raise RuntimeError(f"cudaErrorInvalidDevice: the simulated device has one GPU, not {self.id + 1}")

    def use(self):
        return None

    def synchronize(self):
        trace.recordSync("sync", 0, "Device.synchronize")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    compute_capability = "90"


def _deviceCount():
    return 1


runtime = types.SimpleNamespace(
    getDeviceCount=_deviceCount,
    getDevice=lambda: 0,
    runtimeGetVersion=lambda: 12090,
    driverGetVersion=lambda: 12090,
    deviceSynchronize=lambda: trace.recordSync("sync", 0, "deviceSynchronize"),
    getDeviceProperties=lambda device: {"name": b"minidl simulated device", "totalGlobalMem": 80 * 2**30},
)

nccl = types.SimpleNamespace(available=False)  # no NCCL: ranks average over MPI through the host
