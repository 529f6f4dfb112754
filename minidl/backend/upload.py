"""Uploads: host-to-device copies that can overlap the device's work.

``startUpload(hostArrays)`` begins copying; ``Upload.arrays()`` returns the device arrays once they can be used.
On a GPU the copy runs on a side CUDA stream from page-locked (pinned) host memory, so it overlaps the kernels
already queued on the current stream; it starts after the work queued so far on the current stream (its target
memory may have been freed by that work), and ``arrays()`` waits for the copy alone. On the CPU the copy is a
plain NumPy copy, made at once: there is nothing to overlap.
"""

from minidl.backend.device import cupy, cupyxModule, toDevice

_sideStream = None


def _stream():
    global _sideStream
    if _sideStream is None:
        _sideStream = cupy.cuda.Stream(non_blocking=True)
    return _sideStream


class Upload:
    """Device copies of host arrays, in flight until ``arrays()``."""

    def __init__(self, hostArrays, overlap=True):
        if cupy is None or not overlap:
            self.device, self.pinned, self.done = [toDevice(array) for array in hostArrays], None, None
            return
        self.pinned = [cupyxModule().empty_pinned(array.shape, array.dtype) for array in hostArrays]
        for pinned, array in zip(self.pinned, hostArrays):
            pinned[...] = array
        self.device = [cupy.empty(array.shape, array.dtype) for array in hostArrays]
        stream = _stream()
        stream.wait_event(cupy.cuda.get_current_stream().record())
        for device, pinned in zip(self.device, self.pinned):
            device.set(pinned, stream=stream)
        self.done = stream.record()

    def arrays(self):
        """The device arrays, their copy finished (the pinned buffers are released only then)."""
        if self.done is not None:
            self.done.synchronize()
            self.done, self.pinned = None, None
        return self.device


def startUpload(hostArrays, overlap=True):
    """Begin copying the host (NumPy) arrays ``hostArrays`` to the device; returns an Upload. ``overlap=False``
    copies at once on the current stream (as on the CPU), for comparison."""
    return Upload(hostArrays, overlap)
