"""NodeInfo's choice of device and transport on GPU machines, without a GPU: the device count, the device
binding and NCCL's communicator are stubbed (the device side only); one process plays each rank, through an
MPI communicator stand-in whose ranks all share this rank's node."""

import sys

import numpy
import pytest

from minidl import backend
from minidl.distributed import DistributedError, nodeinfo
from minidl.distributed.nodeinfo import NodeInfo

pytest.importorskip("mpi4py", reason="the mpi extra (mpi4py, mpich) is not installed")


class Node:
    def __init__(self, rank, size):
        self.rank, self.size = rank, size

    def Get_rank(self):  # noqa: N802 - mpi4py's names
        return self.rank

    def Get_size(self):  # noqa: N802
        return self.size


class OneNodeComm(Node):
    """Rank ``rank`` of ``size`` ranks on one node: every rank contributes what this one does."""

    aborted = None

    def Split_type(self, kind):  # noqa: N802
        return Node(self.rank, self.size)

    def allreduce(self, value, op):
        return value

    def Ibarrier(self):  # noqa: N802 - the start-up barrier (with its deadline) completes at once
        return type("Request", (), {"Test": lambda self: True})()

    def Iprobe(self, **kwargs):  # noqa: N802 - no rank announces it is waiting
        return False

    def Abort(self, code):  # noqa: N802
        self.aborted = code


@pytest.fixture
def gpuMachine(monkeypatch):
    """A GPU machine of ``devices`` GPUs, NCCL installed or not; returns the list of bound devices and of
    NCCL communicators made."""
    made = {"devices": [], "nccl": []}

    def machine(devices, nccl=True, ncclFails=False):
        monkeypatch.setattr(backend, "isGpu", True)
        monkeypatch.setattr(nodeinfo, "deviceCount", lambda: devices)
        monkeypatch.setattr(nodeinfo, "useDevice", made["devices"].append)
        monkeypatch.setattr(nodeinfo, "ncclAvailable", lambda: nccl)
        monkeypatch.setattr(nodeinfo, "ABORT_GRACE_SECONDS", 0)
        monkeypatch.setattr(sys, "excepthook", sys.excepthook)

        def communicator(comm):
            assert sys.excepthook is not sys.__excepthook__, "the abort hook must be in place before NCCL setup"
            if ncclFails:
                raise RuntimeError("NCCL error: Duplicate GPU detected")
            made["nccl"].append(comm)
            return "communicator"

        monkeypatch.setattr(nodeinfo, "NcclCommunicator", communicator)
        return made

    return machine


@pytest.mark.parametrize("devices", [1, 2])
def test_one_rank_takes_gpu_0_and_needs_no_collective_transport(gpuMachine, devices, capsys):
    made = gpuMachine(devices)
    info = NodeInfo(OneNodeComm(0, 1))
    assert made["devices"] == [0] and made["nccl"] == [] and info.nccl is None
    assert info.transport == "mpi (host staging)" and capsys.readouterr().err == ""


def test_two_ranks_on_one_gpu_share_it_over_mpi_and_rank_0_says_so(gpuMachine, capsys):
    made = gpuMachine(1)
    infos = [NodeInfo(OneNodeComm(rank, 2)) for rank in (0, 1)]
    assert made["devices"] == [0, 0] and made["nccl"] == []
    assert [info.transport for info in infos] == ["mpi (host staging)"] * 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["minidl: 2 ranks average gradients over MPI through the host: ranks share a GPU "
                   "(NCCL needs a GPU per rank)"]


def test_two_ranks_on_two_gpus_take_one_each_and_use_nccl(gpuMachine, capsys):
    made = gpuMachine(2)
    comms = [OneNodeComm(rank, 2) for rank in (0, 1)]
    infos = [NodeInfo(comm) for comm in comms]
    assert made["devices"] == [0, 1] and made["nccl"] == comms
    assert [info.transport for info in infos] == ["nccl", "nccl"] and infos[0].nccl == "communicator"
    assert capsys.readouterr().err == ""


def test_two_ranks_on_two_gpus_without_nccl_use_mpi_and_say_why(gpuMachine, capsys):
    made = gpuMachine(2, nccl=False)
    info = NodeInfo(OneNodeComm(0, 2))
    assert made["devices"] == [0] and info.transport == "mpi (host staging)" and info.nccl is None
    assert "NCCL is not installed on every node (pip install nvidia-nccl-cu12" in capsys.readouterr().err


def test_a_rank_failing_in_nccl_setup_ends_the_job(gpuMachine, capsys):
    gpuMachine(2, ncclFails=True)
    comm = OneNodeComm(1, 2)
    with pytest.raises(RuntimeError, match="Duplicate GPU"):
        NodeInfo(comm)
    assert comm.aborted == 1
    assert "rank 1 of 2 failed; aborting the job" in capsys.readouterr().err


def test_cpu_ranks_use_mpi_in_place(monkeypatch):
    monkeypatch.setattr(backend, "isGpu", False)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(nodeinfo, "deviceCount", lambda: pytest.fail("a CPU run asks for no GPU"))
    assert NodeInfo(OneNodeComm(0, 2)).transport == "mpi"


@pytest.mark.parametrize("collective", ["sumTensor", "broadcastBuffer"])
def test_a_buffer_nccl_cannot_reduce_is_refused_before_the_collective(gpuMachine, monkeypatch, collective):
    """NCCL's communicator takes float16, float32 and float64 buffers (its type table); any other is a
    DistributedError naming the dtype before the collective starts, as over MPI (it was a KeyError from inside the
    communicator, on every rank)."""
    gpuMachine(2)
    started = []
    info = NodeInfo(OneNodeComm(0, 2))
    stub = type("Nccl", (), {"sum": lambda self, array: started.append(array),
                             "broadcast": lambda self, array, root: started.append(array)})
    monkeypatch.setattr(info, "nccl", stub())
    labels = backend.xp.arange(4, dtype=numpy.int32)
    with pytest.raises(DistributedError, match=f"{collective} over NCCL supports float16, float32 and float64 "
                                                "buffers, got int32"):
        getattr(info, collective)(labels)
    assert started == [] and labels.tolist() == [0, 1, 2, 3]
