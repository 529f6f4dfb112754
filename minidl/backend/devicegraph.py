"""DeviceGraph: a block of device work captured once as a CUDA graph (CuPy's stream capture) and launched again as one
call, the device's counterpart of a ``Tape``.

    graph = DeviceGraph()
    out = graph.capture(lambda x: net(x), sample)   # runs nothing: records the block's kernels, copies and products
    graph.launch(sample, renew=False)               # the captured step itself, with the numbers it was captured with
    graph.launch(nextSample)                        # the same work on new inputs, live values read anew: out holds it

The block runs on a stream of its own while it is captured; the graph is launched on the current stream, after
what is queued there. What a capture needs stays put for the graph's life:
- the inputs: buffers allocated before the capture (filled with the capture's inputs: the simulated device computes
  what it captures), which each launch first fills from the arrays it is given;
- what the block allocates: a memory pool of the graph's own (``cupy.cuda.MemoryPool``), which keeps its blocks
  for the graph (a temporary the block frees is used again inside the block only);
- the live values (``livevalues``): a buffer of the graph's, filled before each launch;
- what the block uses that existed before it (parameters, optimizer state, caches): the caller names them
  (``keep``), since a CUDA graph does not keep memory alive; the simulated device refuses to launch a graph whose
  memory was freed.
A block cannot read the device from the host (a sync) or copy host data to the device while it is captured: CuPy
raises, and ``capture`` raises that error with the stream's capture ended.
"""

from minidl.backend.device import cupy, isDeviceArray, xp
from minidl.backend.livevalues import LiveTable
from minidl.backend.tape import Recorder


class DeviceGraph:
    """One captured block of device work (see the module's docstring)."""

    def __init__(self):
        self.pool = cupy.cuda.MemoryPool()
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.inputs, self.kept, self.live, self.graph = [], [], None, None

    def capture(self, block, *inputs):
        """Capture ``block(*inputBuffers)`` (input buffers shaped as ``inputs``, filled with them before the capture)
        and return what it returned: arrays that hold each launch's results once it has run."""
        self.inputs = [xp.empty(value.shape, dtype=value.dtype) for value in inputs]
        self._fill(inputs)
        self.live = LiveTable()
        Recorder.liveTable = self.live
        try:
            with cupy.cuda.using_allocator(self.pool.malloc), self.stream:
                self.stream.begin_capture()
                try:
                    result = block(*self.inputs)
                except BaseException:
                    _endQuietly(self.stream)
                    raise
                self.graph = self.stream.end_capture()
        finally:
            Recorder.liveTable = None
        return result

    def keep(self, arrays):
        """Hold ``arrays`` (device arrays the block used that existed before it) while the graph lives."""
        self.kept.extend(array for array in arrays if isDeviceArray(array))

    def launch(self, *inputs, renew=True):
        """Copy ``inputs`` into the input buffers, the live values into theirs (read anew when ``renew``, else the
        capture's own), and launch the graph on the current stream."""
        if len(inputs) != len(self.inputs):
            raise ValueError(f"the graph takes {len(self.inputs)} inputs, got {len(inputs)}")
        for buffer, value in zip(self.inputs, inputs):
            if value.shape != buffer.shape or value.dtype != buffer.dtype:
                raise ValueError(f"the graph was captured for an input {buffer.shape} {buffer.dtype}, got "
                                 f"{value.shape} {value.dtype}")
        self._fill(inputs)
        self.live.write(renew)
        self.graph.launch(stream=cupy.cuda.get_current_stream())

    def _fill(self, inputs):
        for buffer, value in zip(self.inputs, inputs):
            if isDeviceArray(value):
                buffer[...] = value
            else:
                buffer.set(value, stream=cupy.cuda.get_current_stream())


def _endQuietly(stream):
    """End a capture the block broke off (its error is the one to raise)."""
    try:
        stream.end_capture()
    except RuntimeError:
        pass
