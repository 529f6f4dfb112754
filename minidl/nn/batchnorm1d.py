"""BatchNorm1D: BatchNorm over (N, C, L) data, statistics per map over the batch and the length:

    y[n, c, t] = scale[c] (x[n, c, t] - mean[c]) / sqrt(var[c] + epsilon) + bias[c],

BatchNorm's kernels and running statistics (BatchNorm itself takes (N, C))."""

from minidl.nn.batchnorm import BatchNorm


class BatchNorm1D(BatchNorm):
    """``BatchNorm1D(maps, epsilon=1e-5, momentum=0.1)``; the same Variables and buffers as BatchNorm."""

    ndim = 3
