"""The handwritten digits that scikit-learn ships inside its package (no download): 1797 images of 8×8
pixels, 10 classes (the UCI optical digits test set). Needs the ``datasets`` extra (scikit-learn)."""

import numpy

from minidl.datasets.dataset import DataSet
from minidl.errors import DataError

VALIDATION_EVERY = 5


def loadDigits(flat=True):
    """The digits as a DataSet: pixels scaled from 0..16 to [0, 1], float32; labels int32.

    The split is fixed and needs no random draw: within each class, every fifth image (the 5th, 10th,
    ...) goes to validation — 355 images, 34 to 36 per class — and the other 1442 to training.
    ``flat=True`` gives samples of 64 features, ``flat=False`` images of shape (1, 8, 8).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise DataError(
            "the digits data set comes with scikit-learn: pip install 'minidl[datasets]'"
        ) from error
    digits = load_digits()
    data = (digits.data / 16.0).astype(numpy.float32)
    labels = digits.target.astype(numpy.int32)
    if not flat:
        data = data.reshape(-1, 1, 8, 8)
    rankInClass = numpy.empty(len(labels), dtype=numpy.int64)
    for label in numpy.unique(labels):
        members = numpy.flatnonzero(labels == label)
        rankInClass[members] = numpy.arange(len(members))
    validation = rankInClass % VALIDATION_EVERY == VALIDATION_EVERY - 1
    return DataSet(data[~validation], labels[~validation], data[validation], labels[validation], classes=10)
