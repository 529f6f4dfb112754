"""Synthetic classification data for tests and examples: Gaussian blobs, one per class."""

import numpy

from minidl.datasets.dataset import DataSet
from minidl.errors import DataError


def gaussianBlobs(samples=1000, features=8, classes=4, spread=1.0, validationFraction=0.2, seed=0):
    """Class centres drawn from N(0, 3²) per feature, samples from N(centre, spread²): a DataSet.

    Labels cycle through the classes (balanced); the data's own generator (``seed``) makes the set
    independent of minidl's training seed. The last ``validationFraction`` of the samples is validation.
    """
    if samples < 2 or features < 1 or classes < 2 or not 0 < validationFraction < 1:
        raise DataError(
            f"gaussianBlobs needs samples >= 2, features >= 1, classes >= 2 and 0 < validationFraction < 1, got "
            f"samples={samples}, features={features}, classes={classes}, validationFraction={validationFraction}"
        )
    rng = numpy.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, size=(classes, features))
    labels = rng.permutation(numpy.arange(samples) % classes).astype(numpy.int32)
    data = (centres[labels] + rng.normal(0.0, spread, size=(samples, features))).astype(numpy.float32)
    split = samples - max(1, int(round(samples * validationFraction)))
    return DataSet(data[:split], labels[:split], data[split:], labels[split:], classes=classes)
