"""Batching host data for the device: checks, macro-batch transfers, minibatches, a progress bar.

Host arrays move to the device one macro-batch at a time (rows in a given order, or as stored), and
minibatches of ``batchsize`` rows are views of the macro-batch. The next macro-batch is gathered (and augmented)
on the host and its copy started before the current one's minibatches are handed out, so on a GPU the copy
overlaps the current steps (``minidl.backend.startUpload``); the host does the same work in the same order on
every device, so random draws come in one order everywhere. The macro-batch is rounded down to a
multiple of ``batchsize``, so the minibatches do not depend on ``macroBatchSize``: only the last one of
the pass may be shorter.
"""

import numpy
from tqdm.auto import tqdm

from minidl.backend import startUpload
from minidl.errors import DataError


def checkPositive(name, value):
    """DataError unless ``value`` is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def checkHostData(*arrays, names=("data", "target")):
    """DataError unless every array is a non-empty host (NumPy) array and all have one length."""
    for name, array in zip(names, arrays):
        if not isinstance(array, numpy.ndarray):
            raise DataError(f"{name} must be a host (NumPy) array, got {type(array).__name__}")
        if array.ndim == 0 or len(array) == 0:
            raise DataError(f"{name} must hold at least one sample, got shape {array.shape}")
    lengths = {len(array) for array in arrays}
    if len(lengths) > 1:
        described = ", ".join(f"{name} has {len(array)}" for name, array in zip(names, arrays))
        raise DataError(f"data and labels must have one length: {described}")
    return len(arrays[0])


def progressBar(total, description, verbose):
    """A tqdm bar over ``total`` samples; off when ``verbose`` is False or stderr is not a terminal."""
    return tqdm(total=total, desc=description, unit="sample", leave=False, disable=None if verbose else True)


def checkShards(size, batchsize, gridsize):
    """DataError unless ``size`` samples fill at least one global batch: ``batchsize`` on each of ``gridsize``
    ranks."""
    if size < batchsize * gridsize:
        raise DataError(f"{size} samples cannot fill one batch of {batchsize} on each of {gridsize} ranks")


def rankShard(order, batchsize, index, gridsize):
    """The rows rank ``index`` of ``gridsize`` trains on: the index-th ``batchsize`` rows of every global batch
    of ``batchsize × gridsize`` rows of ``order``. A last incomplete global batch is left out, so every rank
    takes the same number of steps and N ranks see exactly the batches of one process with N × batchsize."""
    checkShards(len(order), batchsize, gridsize)
    globalBatch = batchsize * gridsize
    usable = len(order) // globalBatch * globalBatch
    return order[:usable].reshape(-1, gridsize, batchsize)[:, index].ravel()


def deviceBatches(arrays, batchsize, macroBatchSize, order=None, progress=None, transform=None, overlap=True):
    """Yield tuples of device minibatches (one per array) covering every row once, or the rows of ``order`` (a
    permutation, or a rank's shard) in that order; ``transform`` (an augmentation), when given, rewrites each
    host macro-batch of the first array before it goes to the device. ``overlap=False`` copies on the current
    stream, in line with the steps (for comparison in the benchmarks)."""
    size = len(arrays[0]) if order is None else len(order)
    macroSize = max(1, macroBatchSize // batchsize) * batchsize

    def upload(start):
        rows = slice(start, start + macroSize) if order is None else order[start:start + macroSize]
        host = [numpy.ascontiguousarray(array[rows]) for array in arrays]
        if transform is not None:
            host[0] = transform(host[0])
        return startUpload(host, overlap)

    pending = upload(0)
    for start in range(0, size, macroSize):
        macro = pending.arrays()
        if start + macroSize < size:
            pending = upload(start + macroSize)
        for offset in range(0, len(macro[0]), batchsize):
            batch = tuple(array[offset:offset + batchsize] for array in macro)
            yield batch
            if progress is not None:
                progress.update(len(batch[0]))

