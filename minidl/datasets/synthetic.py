"""Synthetic classification data for tests and examples: Gaussian blobs, one per class."""

import math

import numpy

from minidl.datasets.dataset import DataSet
from minidl.errors import DataError


def _isInteger(value):
    return isinstance(value, (int, numpy.integer)) and not isinstance(value, bool)


def gaussianBlobs(samples=1000, features=8, classes=4, spread=1.0, validationFraction=0.2, seed=0):
    """Class centres drawn from N(0, 3²) per feature, samples from N(centre, spread²): a DataSet.

    Labels cycle through the classes (balanced); the data's own generator (``seed``) makes the set
    independent of minidl's training seed. The last ``validationFraction`` of the samples is validation
    (rounded, and at least one sample in each part).
    """
    integers = all(_isInteger(value) for value in (samples, features, classes))
    numbers = all(isinstance(value, (int, float, numpy.floating)) for value in (spread, validationFraction))
    if not (integers and numbers and samples >= 2 and features >= 1 and classes >= 2 and 0 <= spread < math.inf
            and 0 < validationFraction < 1):
        raise DataError(
            f"gaussianBlobs needs integers samples >= 2, features >= 1, classes >= 2, a finite spread >= 0 and "
            f"0 < validationFraction < 1, got samples={samples!r}, features={features!r}, classes={classes!r}, "
            f"spread={spread!r}, validationFraction={validationFraction!r}"
        )
    rng = numpy.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, size=(classes, features))
    labels = rng.permutation(numpy.arange(samples) % classes).astype(numpy.int32)
    data = (centres[labels] + rng.normal(0.0, spread, size=(samples, features))).astype(numpy.float32)
    validation = min(samples - 1, max(1, int(round(samples * validationFraction))))
    split = samples - validation
    return DataSet(data[:split], labels[:split], data[split:], labels[split:], classes=classes)
