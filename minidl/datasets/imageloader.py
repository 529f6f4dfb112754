"""ImagePipeline and ImageLoader: batches of decoded (and augmented) images from an image source, uint8 on the host.

``ImagePipeline(source, decoder, batchsize, augment=None, seed=0, workers=0, prefetch=2, skipCorrupt=False,
normalizer=None)`` decodes batches inline (``workers=0``) or in a WorkerPool of ``workers`` processes,
``workers + prefetch`` batches in flight. ``pipeline.loader(indices, train)`` is an ImageLoader over some of
the source's samples (a training part, augmented; a validation part, centre crops); loaders of one pipeline
share its workers.
``loader.deviceBatches(epoch)`` hands each batch to the device as uint8 and converts it there with the
pipeline's ImageNormalizer (by default mean 0.5 and std 0.25 per channel, float32): what a Trainer steps on.

The sample order of epoch e is a permutation drawn from (seed, e) alone (``keyedGenerator``), and each sample's
augmentation from (seed, e, sample index): a loader gives the same batches with any number of workers, and
``batches(epoch, start)`` starts an epoch at its ``start``-th batch with exactly the samples an uninterrupted
epoch would have given from there (a run resumed mid-epoch).

A file that cannot be decoded is a DataError naming it; with ``skipCorrupt`` it is left out of its batch (which
is then shorter) and its error is kept in the loader's ``skipped`` list.
"""

import math

import numpy

from minidl.backend import toDevice
from minidl.datasets.imageaugment import STREAM_ORDER, STREAM_SPLIT, ImageAugment, keyedGenerator
from minidl.datasets.imagedecode import ImageDecoder
from minidl.datasets.imagenormalize import ImageNormalizer
from minidl.datasets.imagesources import ImageSource
from minidl.datasets.workerpool import WorkerPool
from minidl.errors import DataError


class ImageBatchJob:
    """What a worker does for one batch ``(epoch, indices, train)``: read, decode, augment (training batches),
    write each sample into the batch's arrays (images uint8 (N, C, H, W), labels int32 (N,)); returns
    ``(count, skipped)``."""

    def __init__(self, source, decoder, augment, seed, skipCorrupt):
        self.source, self.decoder, self.augment, self.seed = source, decoder, augment, seed
        self.skipCorrupt = skipCorrupt

    def read(self, index, name):
        try:
            return self.source.read(index)
        except (OSError, KeyError) as error:
            raise DataError(f"{name} cannot be read: {error}") from error

    def sample(self, data, index, epoch, train, name):
        """The decoded (and, for training, augmented) pixels of one file's bytes."""
        if not train or self.augment is None:
            return self.decoder.decode(data, name, None)
        draws = self.augment.draws(self.seed, epoch, index)
        return self.augment.apply(self.decoder.decode(data, name, self.augment.box(draws)), draws)

    def fill(self, task, arrays, note):
        epoch, indices, train = task
        images, labels = arrays
        count, skipped = 0, []
        for index in indices:
            name = self.source.describe(index)
            note(name)
            data = self.read(index, name)  # a file that cannot be read is never skipped
            try:
                images[count] = self.sample(data, index, epoch, train, name)
            except DataError as error:
                if not self.skipCorrupt:
                    raise
                skipped.append(str(error))
                continue
            labels[count] = self.source.entries[index][1]
            count += 1
        note("")
        return count, skipped


class ImagePipeline:
    def __init__(self, source, decoder, batchsize, augment=None, seed=0, workers=0, prefetch=2, skipCorrupt=False,
                 normalizer=None):
        if not isinstance(source, ImageSource):
            raise DataError(f"source must be an ImageSource, got {type(source).__name__}")
        if not isinstance(decoder, ImageDecoder):
            raise DataError(f"decoder must be an ImageDecoder, got {type(decoder).__name__}")
        if augment is not None and not isinstance(augment, ImageAugment):
            raise DataError(f"augment must be an ImageAugment, got {type(augment).__name__}")
        for name, value, low in (("batchsize", batchsize, 1), ("workers", workers, 0), ("prefetch", prefetch, 0),
                                 ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise DataError(f"{name} must be an integer >= {low}, got {value!r}")
        if normalizer is not None and not isinstance(normalizer, ImageNormalizer):
            raise DataError(f"normalizer must be an ImageNormalizer, got {type(normalizer).__name__}")
        if normalizer is not None and normalizer.channels != decoder.channels:
            raise DataError(f"the normalizer takes {normalizer.channels} channels, the decoder makes "
                            f"{decoder.channels}")
        self.normalizer = ImageNormalizer(decoder.channels) if normalizer is None else normalizer
        self.source, self.decoder, self.batchsize = source, decoder, batchsize
        self.seed, self.workers, self.prefetch = seed, workers, prefetch
        self.job = ImageBatchJob(source, decoder, augment, seed, bool(skipCorrupt))
        self.layout = [((batchsize, *decoder.shape), numpy.uint8), ((batchsize,), numpy.int32)]
        self.pool, self.arrays = None, None

    def __repr__(self):
        augment = self.job.augment or "no augmentation"
        return (f"ImagePipeline({self.source!r}, {self.decoder!r}, batch {self.batchsize}, {augment}, "
                f"{self.workers} workers)")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def run(self, tasks):
        """(result, (images, labels)) per task, in order: see WorkerPool.run."""
        if self.workers == 0:
            if self.arrays is None:
                self.arrays = [numpy.empty(shape, dtype) for shape, dtype in self.layout]
            for task in tasks:
                yield self.job.fill(task, self.arrays, lambda text: None), self.arrays
            return
        if self.pool is None or not self.pool.processes:
            self.pool = WorkerPool(self.job, self.workers, self.layout, self.workers + self.prefetch)
        yield from self.pool.run(tasks)

    def loader(self, indices, train):
        return ImageLoader(self, indices, train)


class ImageLoader:
    """The batches of one part of a source: ``batches(epoch, start=0)`` yields host ``(images, labels)`` (uint8
    (n, C, H, W), int32 (n,)), views valid until the next batch is asked for; training parts are shuffled per
    epoch and augmented, others come in index order. ``labels`` (every sample's, in index order),
    ``classes``, ``sampleShape``, ``dtype`` (of the device batches), ``len()`` (samples), ``batchCount``."""

    def __init__(self, pipeline, indices, train):
        self.pipeline, self.train = pipeline, bool(train)
        self.indices = numpy.asarray(indices, dtype=numpy.int64)
        if self.indices.ndim != 1 or len(self.indices) == 0:
            raise DataError(f"a loader needs a non-empty list of sample indices, got shape {self.indices.shape}")
        if self.indices.min() < 0 or self.indices.max() >= len(pipeline.source):
            raise DataError(f"sample indices must lie in [0, {len(pipeline.source)})")
        entries = pipeline.source.entries
        self.labels = numpy.array([entries[index][1] for index in self.indices], dtype=numpy.int32)
        self.classes = list(pipeline.source.classes)
        self.sampleShape = pipeline.decoder.shape
        self.dtype = pipeline.normalizer.dtype
        self.batchsize = pipeline.batchsize
        self.batchCount = math.ceil(len(self.indices) / self.batchsize)
        self.skipped = []

    def __len__(self):
        return len(self.indices)

    def __repr__(self):
        return f"ImageLoader({len(self)} {'training' if self.train else 'validation'} samples of {self.pipeline!r})"

    def order(self, epoch):
        """The samples of epoch ``epoch`` in order: a permutation drawn from (seed, epoch) for training."""
        if not self.train:
            return self.indices
        return self.indices[keyedGenerator(self.pipeline.seed, STREAM_ORDER, epoch).permutation(len(self.indices))]

    def batches(self, epoch, start=0):
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= self.batchCount:
            raise DataError(f"an epoch of {self.batchCount} batches cannot start at batch {start!r}")
        order, size = self.order(epoch), self.batchsize
        tasks = ((epoch, order[index * size:(index + 1) * size], self.train) for index in range(start, self.batchCount))
        for (count, skipped), (images, labels) in self.pipeline.run(tasks):
            self.skipped += skipped
            if count:
                yield images[:count], labels[:count]

    def deviceBatches(self, epoch, start=0):
        """``batches`` as device arrays: images converted and normalised by the pipeline's normalizer, labels."""
        for images, labels in self.batches(epoch, start):
            yield self.pipeline.normalizer(images), toDevice(labels)


def splitIndices(size, valFraction, seed):
    """(training, validation) sample indices, each sorted: round(size × valFraction) samples drawn from the seed
    for validation, the rest for training."""
    if not 0 < valFraction < 1:
        raise DataError(f"the validation fraction must lie in (0, 1), got {valFraction!r}")
    count = round(size * valFraction)
    if not 0 < count < size:
        raise DataError(f"a validation fraction of {valFraction:g} of {size} samples leaves one part empty")
    permutation = keyedGenerator(seed, STREAM_SPLIT, 0).permutation(size)
    return numpy.sort(permutation[count:]), numpy.sort(permutation[:count])
