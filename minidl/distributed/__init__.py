"""Data-parallel training over MPI (and NCCL on GPUs): NodeInfo."""

from minidl.distributed.nodeinfo import NodeInfo
from minidl.errors import DistributedError

__all__ = ["DistributedError", "NodeInfo"]
