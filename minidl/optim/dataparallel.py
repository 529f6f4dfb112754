"""The distributed step: with a ``nodeinfo`` (data-parallel training over MPI / NCCL, global state only),
``setupOn`` gives every rank rank 0's parameters and ``update`` first averages each flat gradient buffer over the
ranks, one collective per buffer. A training pass ends by averaging the module's buffers (BatchNorm's running
statistics, which each rank updates from its own shard) over the ranks, so every rank validates, decides and
checkpoints with the same ones."""

import numpy

from minidl.distributed.nodeinfo import NodeInfo
from minidl.errors import OptimizerError


def checkNodeInfo(nodeinfo):
    """``nodeinfo`` if it is None or a NodeInfo, else OptimizerError."""
    if nodeinfo is not None and not isinstance(nodeinfo, NodeInfo):
        raise OptimizerError(f"nodeinfo must be a minidl.distributed.NodeInfo, got {type(nodeinfo).__name__}")
    return nodeinfo


def checkLayout(nodeinfo, useGlobalState):
    """OptimizerError unless the layout suits ``nodeinfo``: one collective per flat buffer needs global state."""
    if nodeinfo is not None and not useGlobalState:
        raise OptimizerError("data-parallel training (nodeinfo) needs useGlobalState=True")


def shareParameters(nodeinfo, groups):
    """Give every rank rank 0's parameters (at ``setupOn``)."""
    if nodeinfo is not None:
        for group in groups:
            nodeinfo.broadcastBuffer(group.param)


def averageGradients(nodeinfo, groups):
    """Replace each flat gradient buffer by its mean over the ranks (at the start of ``update``)."""
    if nodeinfo is not None:
        for group in groups:
            nodeinfo.meanTensor(group.grad)


def averageBuffers(nodeinfo, module):
    """Replace each of ``module``'s floating buffers by its mean over the ranks (at the end of a training pass): the
    running statistics every rank updated from its own shard become the same on every rank."""
    if nodeinfo is not None:
        for buffer in module.getBufferTable().values():
            if numpy.issubdtype(buffer.dtype, numpy.floating):
                nodeinfo.meanTensor(buffer)
