"""BatchNorm3D: BatchNorm over (N, C, D, H, W) data, statistics per map over the batch and the three spatial axes:

    y[n, c, z, y, x] = scale[c] (x[n, c, z, y, x] - mean[c]) / sqrt(var[c] + epsilon) + bias[c],

BatchNorm's kernels and running statistics."""

from minidl.nn.batchnorm import BatchNorm


class BatchNorm3D(BatchNorm):
    """``BatchNorm3D(maps, epsilon=1e-5, momentum=0.1)``; the same Variables and buffers as BatchNorm."""

    ndim = 5
