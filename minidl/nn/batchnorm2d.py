"""BatchNorm2D: BatchNorm over (N, C, H, W) data, statistics per map over the batch and both spatial axes."""

from minidl.nn.batchnorm import BatchNorm


class BatchNorm2D(BatchNorm):
    """``BatchNorm2D(maps, epsilon=1e-5, momentum=0.1)``; the same Variables and buffers as BatchNorm."""

    ndim = 4
