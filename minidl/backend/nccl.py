"""NCCL collectives on device buffers, for data-parallel training on GPUs.

The communicator is bootstrapped over MPI: rank 0 creates NCCL's unique id and MPI broadcasts it. Calls
are queued on the current CUDA stream, in place on the buffer, and return a function that says whether the
queued collective has completed (an event recorded after it), so that the caller can wait with a deadline.
"""

from minidl.backend.device import cupy


def ncclAvailable():
    """True when CuPy runs on a GPU and its NCCL bindings load."""
    if cupy is None:
        return False
    try:
        from cupy.cuda import nccl
    except ImportError:
        return False
    return bool(getattr(nccl, "available", True))


def useLocalDevice(localIndex):
    """Bind this process to GPU ``localIndex`` modulo the devices of its node: one device per rank."""
    cupy.cuda.Device(localIndex % cupy.cuda.runtime.getDeviceCount()).use()


class NcclCommunicator:
    """In-place all-reduce (sum) and broadcast of CuPy arrays across the ranks of an MPI communicator."""

    def __init__(self, mpiComm):
        from cupy.cuda import nccl

        self.nccl = nccl
        uniqueId = nccl.get_unique_id() if mpiComm.Get_rank() == 0 else None
        uniqueId = mpiComm.bcast(uniqueId, root=0)
        self.comm = nccl.NcclCommunicator(mpiComm.Get_size(), uniqueId, mpiComm.Get_rank())
        self.types = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64}

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
