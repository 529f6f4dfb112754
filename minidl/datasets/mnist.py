"""MNIST and Fashion-MNIST from the IDX files a user downloaded (the same four names for both, gzipped or not)."""

import os

import numpy

from minidl.datasets.dataset import DataSet
from minidl.datasets.idx import findFile, readIdx, readIdxHeader
from minidl.errors import DataError

PARTS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CLASSES = 10


def partHeaders(folder, part):
    """The paths and announced shapes of a part's images and labels, checked against each other: headers only."""
    imageName, labelName = PARTS[part]
    imagePath, labelPath = findFile(folder, imageName), findFile(folder, labelName)
    imageShape, labelShape = readIdxHeader(imagePath, 3), readIdxHeader(labelPath, 1)
    if imageShape[0] != labelShape[0] or imageShape[0] == 0:
        raise DataError(f"{imagePath} holds {imageShape[0]} images but {labelPath} {labelShape[0]} labels")
    return (imagePath, imageShape), (labelPath, labelShape)


def readPart(headers):
    """The images and labels of a part whose ``partHeaders`` passed."""
    (imagePath, imageShape), (labelPath, labelShape) = headers
    images, labels = readIdx(imagePath, 3, imageShape), readIdx(labelPath, 1, labelShape)
    if labels.max() >= CLASSES:
        raise DataError(f"{labelPath}: labels must lie in [0, {CLASSES}), got {labels.max()}")
    return images, labels


def loadMnist(folder, flat=False):
    """The training (train-*) and test (t10k-*) files in ``folder`` as a DataSet whose validation part is the
    test set: images as float32 in [0, 1] (pixel / 255) of shape (1, rows, cols), or rows·cols features with
    ``flat``; labels int32 in range(10). Works for MNIST and Fashion-MNIST alike.

    DataError naming the file when one is missing (neither the name nor the name with .gz), is not an IDX file
    of the right kind, is cut short, or disagrees with its partner: every header is checked against its file's
    size and the others before any data are read.
    """
    folder = os.path.expanduser(folder)
    headers = {part: partHeaders(folder, part) for part in PARTS}  # every header checked before any data is read
    trainShape, testShape = headers["train"][0][1][1:], headers["test"][0][1][1:]
    if trainShape != testShape:
        raise DataError(f"{folder}: training images are {trainShape}, test images {testShape}")
    train, test = readPart(headers["train"]), readPart(headers["test"])

    def images(array):
        scaled = array.astype(numpy.float32) / 255
        return scaled.reshape(len(array), -1) if flat else scaled[:, None]

    return DataSet(images(train[0]), train[1].astype(numpy.int32), images(test[0]), test[1].astype(numpy.int32),
                   classes=CLASSES)
