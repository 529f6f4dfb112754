"""NodeInfo: this process's place in a data-parallel training job, and the collectives it needs.

Processes are started by MPI (``mpiexec -n N python -m minidl train ...``). Each rank holds a full copy
of the model and trains on its shard of every batch; before each update the optimizer averages the flat
gradient buffer over the ranks in ONE collective per dtype, so every rank applies the same step and the
parameters stay identical. Transport: NCCL between GPUs (bootstrapped over MPI) when every rank of every
node has a GPU of its own; MPI ``Allreduce`` in place on NumPy buffers on the CPU; MPI through host copies on
GPUs otherwise (ranks sharing a GPU, or NCCL not installed), said in one line by rank 0.

Create the NodeInfo before building the network: on GPUs it binds the process to its device (local rank r
of a node with d GPUs takes GPU r % d).

Every collective has a deadline (``timeout`` seconds, default 600 or ``MINIDL_COLLECTIVE_TIMEOUT``): it is
started non-blocking and polled, and a rank whose wait passes the deadline prints which ranks never reached
that collective and aborts the whole job, so a stopped or stuck rank cannot hang the others forever. A rank
that has waited in collective #n for a quarter of the deadline (at most a second) tells the others so with a
small message; the ranks that never said so by the deadline are the ones named. A collective that completes
in time sends nothing extra.
"""

import contextlib
import math
import os
import pickle
import sys
import time
import traceback

import numpy

from minidl import backend
from minidl.backend.nccl import DTYPES as NCCL_DTYPES
from minidl.backend.nccl import NcclCommunicator, deviceCount, ncclAvailable, useDevice
from minidl.errors import DistributedError

# MPI has no half type: float16 buffers are summed as float32 copies and broadcast as their 16-bit words
MPI_TYPES = {numpy.dtype(numpy.float16), numpy.dtype(numpy.float32), numpy.dtype(numpy.float64)}
NCCL_TYPES = {numpy.dtype(name) for name in NCCL_DTYPES}
# The launcher forwards a rank's output through a pipe and tears it down on MPI_Abort: give it time to read.
ABORT_GRACE_SECONDS = 1.0
LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")  # set by MPICH/Hydra, Open MPI, PMIx
INSTALL_NCCL = "pip install nvidia-nccl-cu12, or -cu13 for CUDA 13"
DEFAULT_TIMEOUT_SECONDS = 600.0
TIMEOUT_VARIABLE = "MINIDL_COLLECTIVE_TIMEOUT"
ARRIVAL_TAG = 0x6D646C  # point-to-point "I am waiting in collective #n" messages (apart from collectives in MPI)
LONGEST_ANNOUNCE_DELAY = 1.0  # seconds of waiting in a collective before a rank says so to the others
SPIN_SECONDS = 0.05  # a pending collective is tested without pause this long (as blocking MPI calls spin) ...
LONGEST_POLL_PAUSE = 1e-3  # ... then with pauses growing to this many seconds, to leave the cores to others


def collectiveTimeout(timeout=None):
    """``timeout`` or, when None, ``MINIDL_COLLECTIVE_TIMEOUT`` or 600: seconds, a positive finite number."""
    if timeout is None:
        text = os.environ.get(TIMEOUT_VARIABLE)
        if text is None:
            return DEFAULT_TIMEOUT_SECONDS
        try:
            timeout = float(text)
        except ValueError:
            raise DistributedError(f"{TIMEOUT_VARIABLE} must be a number of seconds, got {text!r}") from None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
        raise DistributedError(f"the collective timeout must be a positive finite number of seconds, got {timeout!r}")
    return float(timeout)


def _importMpi():
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise DistributedError(f"data-parallel training needs mpi4py: pip install 'minidl[mpi]' ({error})") from error
    return MPI


class NodeInfo:
    """``index`` (this rank), ``gridsize`` (the number of ranks), and collectives over the job, each with a
    deadline of ``timeout`` seconds."""

    def __init__(self, comm=None, timeout=None):
        self.timeout = collectiveTimeout(timeout)
        self.MPI = _importMpi()
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.index, self.gridsize = self.comm.Get_rank(), self.comm.Get_size()
        self.collectives = 0  # how many collectives this rank has entered
        self.arrived = [0] * self.gridsize  # the latest collective each rank has said it waits in
        self.announcements = []  # pending sends of this rank's arrivals, with their buffers
        self._await("start-up barrier", lambda: self.comm.Ibarrier().Test)  # everyone is here before blocking calls
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
        """Run a block whose errors, even caught ones further out, must end the whole job; except an error marked
        ``agreed``, which every rank has learnt of in a collective and ends on its own (``minidl.cli.checks``)."""
        try:
            yield self
        except BaseException as error:
            if not getattr(error, "agreed", False):
                self.abortJob(error)
            raise

    def _checkBuffer(self, array, what):
        if not isinstance(array, backend.xp.ndarray) or not array.flags.c_contiguous:
            raise DistributedError(f"{what} needs a C-contiguous {backend.xp.__name__} array, got {type(array)}")
        if self.nccl is None and numpy.dtype(array.dtype) not in MPI_TYPES:
            raise DistributedError(f"{what} over MPI supports float16, float32 and float64 buffers, got {array.dtype}")
        if self.nccl is not None and numpy.dtype(array.dtype) not in NCCL_TYPES:
            raise DistributedError(f"{what} over NCCL supports float16, float32 and float64 buffers, got {array.dtype}")

    def sumTensor(self, array):
        """Replace ``array`` on every rank by its sum over all ranks (one collective)."""
        return self._sum(array, "sumTensor", None)

    def meanTensor(self, array):
        """Replace ``array`` on every rank by its mean over all ranks: one sum collective, then a scale (float16 over
        MPI: both in float32, so that a mean within float16's range is kept where the sum is past it)."""
        return self._sum(array, "meanTensor", 1.0 / self.gridsize)

    def _sum(self, array, what, scale):
        """The sum of ``array`` over the ranks, times ``scale`` unless it is None, in place."""
        self._checkBuffer(array, what)
        if self.nccl is not None:
            self._await("sum (NCCL)", lambda: self.nccl.sum(array))
        else:
            host = backend.toHost(array) if backend.isDeviceArray(array) else array
            wide = host.astype(numpy.float32) if host.dtype == numpy.float16 else host
            self._await("sum", lambda: self.comm.Iallreduce(self.MPI.IN_PLACE, wide, op=self.MPI.SUM).Test)
            if wide is not host:
                if scale is not None:
                    wide *= scale
                    scale = None
                host[...] = wide
            if host is not array:
                array.set(host)
        if scale is not None:
            array *= scale
        return array

    def broadcastBuffer(self, array, root=0):
        """Overwrite ``array`` on every rank with rank ``root``'s values (initial parameters)."""
        self._checkBuffer(array, "broadcastBuffer")
        if self.nccl is not None:
            self._await("broadcast (NCCL)", lambda: self.nccl.broadcast(array, root))
        else:
            host = backend.toHost(array) if backend.isDeviceArray(array) else array
            words = host.view(numpy.uint16) if host.dtype == numpy.float16 else host
            self._await("broadcast", lambda: self.comm.Ibcast(words, root=root).Test)
            if host is not array:
                array.set(host)
        return array

    def meanValue(self, value):
        """The mean of a Python number over all ranks (errors, accuracies)."""
        total = numpy.array([float(value)])
        self._await("mean of a value", lambda: self.comm.Iallreduce(self.MPI.IN_PLACE, total, op=self.MPI.SUM).Test)
        return float(total[0]) / self.gridsize

    def allGather(self, value):
        """The list of every rank's ``value`` (a picklable Python object), by rank: two collectives (the sizes,
        then the bytes)."""
        payload = numpy.frombuffer(pickle.dumps(value), dtype=numpy.uint8)
        sizes = numpy.zeros(self.gridsize, dtype=numpy.int64)
        self._await("gather of sizes", lambda: self.comm.Iallgather(numpy.array([payload.size]), sizes).Test)
        gathered = numpy.empty(int(sizes.sum()), dtype=numpy.uint8)
        self._await("gather", lambda: self.comm.Iallgatherv(payload, (gathered, sizes)).Test)
        offsets = numpy.concatenate([[0], numpy.cumsum(sizes)])
        return [pickle.loads(gathered[begin:end].tobytes()) for begin, end in zip(offsets[:-1], offsets[1:])]

    def barrier(self):
        self._await("barrier", lambda: self.comm.Ibarrier().Test)

    # deadlines

    def _await(self, what, start):
        """Start a collective (``start()`` returns a function that says whether it has completed) and wait for
        it; past a quarter of the deadline say so to the other ranks; past the deadline name the ranks that
        never said so and abort the job."""
        self.collectives += 1
        self._collectArrivals()
        finished = start()
        began, announced = time.monotonic(), False
        announceAfter = min(LONGEST_ANNOUNCE_DELAY, self.timeout / 4)
        pause = 0.0
        while not finished():
            waited = time.monotonic() - began
            if waited >= self.timeout:
                self._collectArrivals()
                self._abortStuck(what)
            if waited > announceAfter and not announced:
                self._announce()
                announced = True
            if waited > SPIN_SECONDS:
                self._collectArrivals()
                time.sleep(pause)
                pause = min(2 * pause + 1e-5, LONGEST_POLL_PAUSE)

    def _announce(self):
        count = numpy.array([self.collectives], dtype=numpy.int64)
        self.announcements = [(request, buffer) for request, buffer in self.announcements if not request.Test()]
        for rank in range(self.gridsize):
            if rank != self.index:
                self.announcements.append((self.comm.Isend(count, dest=rank, tag=ARRIVAL_TAG), count))

    def _collectArrivals(self):
        """Receive the arrival announcements that have come in (they are small: sent at once)."""
        status, count = self.MPI.Status(), numpy.zeros(1, dtype=numpy.int64)
        while self.comm.Iprobe(source=self.MPI.ANY_SOURCE, tag=ARRIVAL_TAG, status=status):
            source = status.Get_source()
            self.comm.Recv(count, source=source, tag=ARRIVAL_TAG)
            self.arrived[source] = max(self.arrived[source], int(count[0]))

    def _abortStuck(self, what):
        """Print which ranks did not say they wait in this rank's current collective, then abort every rank."""
        missing = [rank for rank in range(self.gridsize)
                   if rank != self.index and self.arrived[rank] < self.collectives]
        who = (f"rank{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} did not answer"
               if missing else "every rank arrived, but the collective did not complete")
        sys.stdout.flush()
        sys.stderr.write(
            f"minidl: rank {self.index} of {self.gridsize} waited {self.timeout:g} s in collective #{self.collectives} "
            f"({what}): {who} (stopped, stuck or far slower); aborting the job. Set {TIMEOUT_VARIABLE} to wait "
            "longer.\n"
        )
        sys.stderr.flush()
        time.sleep(ABORT_GRACE_SECONDS)
        self.comm.Abort(1)

