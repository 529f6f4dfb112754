"""NCCL collectives on device buffers, for data-parallel training on GPUs.

The communicator is bootstrapped over MPI: rank 0 creates NCCL's unique id and MPI broadcasts it. Calls
are queued on the current CUDA stream, in place on the buffer, and return a function that says whether the
queued collective has completed (an event recorded after it), so that the caller can wait with a deadline.
"""

import warnings

from minidl.backend.device import cupy, simulated

DTYPES = ("float16", "float32", "float64")  # the buffers NcclCommunicator reduces and broadcasts (its type table)


def ncclAvailable():
    """True when CuPy runs on a GPU and its NCCL bindings load. CuPy warns, in several lines, when libnccl is
    absent: that is an answer here (False), not news for the user, so the warning is not shown. The simulated
    device has no NCCL: its ranks average over MPI through the host."""
    if cupy is None or simulated:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from cupy.cuda import nccl
        except ImportError:
            return False
    return bool(getattr(nccl, "available", True))


def deviceCount():
    """The number of GPUs this process sees."""
    return cupy.cuda.runtime.getDeviceCount()


def useDevice(index):
    """Make GPU ``index`` this process's current device."""
    cupy.cuda.Device(index).use()


class NcclCommunicator:
    """In-place all-reduce (sum) and broadcast of CuPy arrays across the ranks of an MPI communicator."""

    def __init__(self, mpiComm):
        from cupy.cuda import nccl  # loads: ncclAvailable() said so

        self.nccl = nccl
        uniqueId = nccl.get_unique_id() if mpiComm.Get_rank() == 0 else None
        uniqueId = mpiComm.bcast(uniqueId, root=0)
        self.comm = nccl.NcclCommunicator(mpiComm.Get_size(), uniqueId, mpiComm.Get_rank())
        self.types = dict(zip(DTYPES, (nccl.NCCL_FLOAT16, nccl.NCCL_FLOAT32, nccl.NCCL_FLOAT64)))

    def _args(self, array):
        return array.data.ptr, array.size, self.types[str(array.dtype)]

    def sum(self, array):
        pointer, count, dtype = self._args(array)
        stream = cupy.cuda.get_current_stream().ptr
        self.comm.allReduce(pointer, pointer, count, dtype, self.nccl.NCCL_SUM, stream)
        return _completion()

    def broadcast(self, array, root=0):
        pointer, count, dtype = self._args(array)
        self.comm.bcast(pointer, count, dtype, root, cupy.cuda.get_current_stream().ptr)
        return _completion()


def _completion():
    """A function that says whether the work queued so far on the current stream has completed."""
    event = cupy.cuda.Event(disable_timing=True)
    event.record()
    return lambda: event.done
