"""CIFAR-10 from its binary version (cifar-10-binary.tar.gz, extracted): records of one label byte and
3·32·32 pixel bytes (red, green, blue planes, rows in order). No pickle: loading data runs no code."""

import os

import numpy

from minidl.datasets.dataset import DataSet
from minidl.errors import DataError

TRAIN_FILES = tuple(f"data_batch_{index}.bin" for index in range(1, 6))
TEST_FILES = ("test_batch.bin",)
SHAPE = (3, 32, 32)
RECORD = 1 + 3 * 32 * 32
CLASSES = 10
SUBFOLDER = "cifar-10-batches-bin"


def dataFolder(folder):
    """``folder``, or its ``cifar-10-batches-bin`` subfolder when the files are there (the archive's layout)."""
    nested = os.path.join(folder, SUBFOLDER)
    if not os.path.isfile(os.path.join(folder, TEST_FILES[0])) and os.path.isdir(nested):
        return nested
    return folder


def readRecords(folder, names):
    """The images (uint8, N×3×32×32) and labels of the files ``names``; every file is checked before any is read."""
    paths = [os.path.join(folder, name) for name in names]
    for path in paths:
        if not os.path.isfile(path):
            raise DataError(f"missing file {path} (CIFAR-10 binary version)")
        size = os.path.getsize(path)
        if size == 0 or size % RECORD:
            raise DataError(f"{path} is not a CIFAR-10 binary batch: {size} bytes is no whole number of "
                            f"{RECORD}-byte records")
    images, labels = [], []
    for path in paths:
        records = numpy.fromfile(path, dtype=numpy.uint8).reshape(-1, RECORD)
        if records[:, 0].max() >= CLASSES:
            raise DataError(f"{path}: labels must lie in [0, {CLASSES}), got {records[:, 0].max()}")
        images.append(records[:, 1:].reshape(-1, *SHAPE))
        labels.append(records[:, 0])
    return numpy.concatenate(images), numpy.concatenate(labels)


def loadCifar10(folder, flat=False):
    """The five training batches and the test batch in ``folder`` (or ``folder/cifar-10-batches-bin``) as a
    DataSet whose validation part is the test set: images float32 in [0, 1] (pixel / 255) of shape (3, 32, 32),
    or 3072 features with ``flat``; labels int32 in range(10). DataError naming a missing or malformed file."""
    folder = dataFolder(os.path.expanduser(folder))
    trainImages, trainLabels = readRecords(folder, TRAIN_FILES)
    testImages, testLabels = readRecords(folder, TEST_FILES)

    def images(array):
        scaled = array.astype(numpy.float32) / 255
        return scaled.reshape(len(array), -1) if flat else scaled

    return DataSet(images(trainImages), trainLabels.astype(numpy.int32), images(testImages),
                   testLabels.astype(numpy.int32), classes=CLASSES)
