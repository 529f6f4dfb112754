"""MNIST and Fashion-MNIST from the IDX files a user downloaded (the same four names for both, gzipped or not)."""

import os

import numpy

from minidl.datasets.dataset import DataSet
from minidl.datasets.idx import findFile, readIdx
from minidl.errors import DataError

PARTS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CLASSES = 10


def readPart(folder, part):
    imageName, labelName = PARTS[part]
    imagePath, labelPath = findFile(folder, imageName), findFile(folder, labelName)
    images, labels = readIdx(imagePath, 3), readIdx(labelPath, 1)
    if len(images) != len(labels) or len(images) == 0:
        raise DataError(f"{imagePath} holds {len(images)} images but {labelPath} {len(labels)} labels")
    if labels.max() >= CLASSES:
        raise DataError(f"{labelPath}: labels must lie in [0, {CLASSES}), got {labels.max()}")
    return images, labels


def loadMnist(folder, flat=False):
    """The training (train-*) and test (t10k-*) files in ``folder`` as a DataSet whose validation part is the
    test set: images as float32 in [0, 1] (pixel / 255) of shape (1, rows, cols), or rows·cols features with
    ``flat``; labels int32 in range(10). Works for MNIST and Fashion-MNIST alike.

    DataError naming the file when one is missing (neither the name nor the name with .gz), is not an IDX file
    of the right kind, is cut short, or disagrees with its partner.
    """
    folder = os.path.expanduser(folder)
    train, test = readPart(folder, "train"), readPart(folder, "test")
    if train[0].shape[1:] != test[0].shape[1:]:
        raise DataError(f"{folder}: training images are {train[0].shape[1:]}, test images {test[0].shape[1:]}")

    def images(array):
        scaled = array.astype(numpy.float32) / 255
        return scaled.reshape(len(array), -1) if flat else scaled[:, None]

    return DataSet(images(train[0]), train[1].astype(numpy.int32), images(test[0]), test[1].astype(numpy.int32),
                   classes=CLASSES)
