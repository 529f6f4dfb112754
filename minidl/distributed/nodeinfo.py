"""NodeInfo: this process's place in a data-parallel training job, and the collectives it needs.

Processes are started by MPI (``mpiexec -n N python -m minidl train ...``). Each rank holds a full copy
of the model and trains on its shard of every batch; before each update the optimizer averages the flat
gradient buffer over the ranks in ONE collective per dtype, so every rank applies the same step and the
parameters stay identical. Transport: NCCL between GPUs (bootstrapped over MPI) when every rank of every
node has a GPU of its own; MPI ``Allreduce`` in place on NumPy buffers on the CPU; MPI through host copies on
GPUs otherwise (ranks sharing a GPU, or NCCL not installed), said in one line by rank 0.

Create the NodeInfo before building the network: on GPUs it binds the process to its device (local rank r
of a node with d GPUs takes GPU r % d).
"""

import contextlib
import os
import sys
import time
import traceback

import numpy

from minidl import backend
from minidl.backend.nccl import NcclCommunicator, deviceCount, ncclAvailable, useDevice
from minidl.errors import DistributedError

MPI_TYPES = {numpy.dtype(numpy.float32), numpy.dtype(numpy.float64)}
# The launcher forwards a rank's output through a pipe and tears it down on MPI_Abort: give it time to read.
ABORT_GRACE_SECONDS = 1.0
LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")  # set by MPICH/Hydra, Open MPI, PMIx
INSTALL_NCCL = "pip install nvidia-nccl-cu12, or -cu13 for CUDA 13"


def _importMpi():
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise DistributedError(f"data-parallel training needs mpi4py: pip install 'minidl[mpi]' ({error})") from error
    return MPI


class NodeInfo:
    """``index`` (this rank), ``gridsize`` (the number of ranks), and collectives over the job."""

    def __init__(self, comm=None):
        self.MPI = _importMpi()
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.index, self.gridsize = self.comm.Get_rank(), self.comm.Get_size()
        node = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        self.localIndex, self.localSize = node.Get_rank(), node.Get_size()
        self.nccl = None
        if self.gridsize > 1:
            self._abortOnUncaughtError()  # before any communicator is set up: a rank failing there ends the job
        with self.abortOnError() if self.gridsize > 1 else contextlib.nullcontext():
            self.transport, note = self._setupTransport()
        if note is not None and self.isRoot:
            print(f"minidl: {note}", file=sys.stderr, flush=True)

    @classmethod
    def fromLauncher(cls):
        """A NodeInfo when this process was started by mpiexec with more than one rank, else None."""
        if not any(name in os.environ for name in LAUNCHER_VARIABLES):
            return None
        info = cls()
        return info if info.gridsize > 1 else None

    def __repr__(self):
        return f"NodeInfo(index={self.index}, gridsize={self.gridsize}, transport={self.transport})"

    def _setupTransport(self):
        """Bind this rank to its GPU and pick the transport: (transport, a note for the user or None)."""
        if not backend.isGpu:
            return "mpi", None
        devices = deviceCount()
        useDevice(self.localIndex % devices)
        if self.gridsize == 1:
            return "mpi (host staging)", None
        sharing = self.comm.allreduce(self.localSize > devices, op=self.MPI.LOR)  # every rank decides alike
        installed = self.comm.allreduce(ncclAvailable(), op=self.MPI.LAND)
        if not sharing and installed:
            self.nccl = NcclCommunicator(self.comm)
            return "nccl", None
        why = ("ranks share a GPU (NCCL needs a GPU per rank)" if sharing
               else f"NCCL is not installed on every node ({INSTALL_NCCL})")
        return "mpi (host staging)", f"{self.gridsize} ranks average gradients over MPI through the host: {why}"

    @property
    def isRoot(self):
        """Rank 0: the one that prints, plots and writes checkpoints."""
        return self.index == 0

    def _abortOnUncaughtError(self):
        """An exception no one catches on any rank ends the whole job (see ``abortJob``)."""
        sys.excepthook = lambda kind, value, trace: self.abortJob(value)

    def abortJob(self, error):
        """Print this rank's error with its traceback, then abort every rank of the job, so that the others
        never wait forever in a collective."""
        sys.stdout.flush()
        sys.stderr.write(f"minidl: rank {self.index} of {self.gridsize} failed; aborting the job\n")
        traceback.print_exception(type(error), error, error.__traceback__)
        sys.stderr.flush()
        time.sleep(ABORT_GRACE_SECONDS)
        self.comm.Abort(1)

    @contextlib.contextmanager
    def abortOnError(self):
        """Run a block whose errors, even caught ones further out, must end the whole job."""
        try:
            yield self
        except BaseException as error:
            self.abortJob(error)
            raise

    def _checkBuffer(self, array, what):
        if not isinstance(array, backend.xp.ndarray) or not array.flags.c_contiguous:
            raise DistributedError(f"{what} needs a C-contiguous {backend.xp.__name__} array, got {type(array)}")
        if self.nccl is None and numpy.dtype(array.dtype) not in MPI_TYPES:
            raise DistributedError(f"{what} over MPI supports float32 and float64 buffers, got {array.dtype}")

    def sumTensor(self, array):
        """Replace ``array`` on every rank by its sum over all ranks (one collective)."""
        self._checkBuffer(array, "sumTensor")
        if self.nccl is not None:
            self.nccl.sum(array)
        elif backend.isDeviceArray(array):
            host = backend.toHost(array)
            self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
            array.set(host)
        else:
            self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)
        return array

    def meanTensor(self, array):
        """Replace ``array`` on every rank by its mean over all ranks: one sum collective, then a scale."""
        self.sumTensor(array)
        array *= 1.0 / self.gridsize
        return array

    def broadcastBuffer(self, array, root=0):
        """Overwrite ``array`` on every rank with rank ``root``'s values (initial parameters)."""
        self._checkBuffer(array, "broadcastBuffer")
        if self.nccl is not None:
            self.nccl.broadcast(array, root)
        elif backend.isDeviceArray(array):
            host = backend.toHost(array)
            self.comm.Bcast(host, root=root)
            array.set(host)
        else:
            self.comm.Bcast(array, root=root)
        return array

    def meanValue(self, value):
        """The mean of a Python number over all ranks (errors, accuracies)."""
        return self.comm.allreduce(float(value), op=self.MPI.SUM) / self.gridsize

    def barrier(self):
        self.comm.Barrier()
