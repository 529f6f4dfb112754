"""DataSet: host arrays of a training part and a validation part, with integer class labels."""

from dataclasses import dataclass

import numpy

from minidl.errors import DataError


@dataclass(frozen=True)
class DataSet:
    """``trainData[i]`` has label ``trainLabels[i]`` in ``range(classes)``; likewise for validation.

    Data are float32 host (NumPy) arrays with samples on axis 0, labels int32. Construction checks that
    each part has as many labels as samples.
    """

    trainData: numpy.ndarray
    trainLabels: numpy.ndarray
    valData: numpy.ndarray
    valLabels: numpy.ndarray
    classes: int

    def __post_init__(self):
        for part in ("train", "val"):
            data, labels = getattr(self, f"{part}Data"), getattr(self, f"{part}Labels")
            if len(data) != len(labels):
                raise DataError(f"{part}Data has {len(data)} samples but {part}Labels has {len(labels)} labels")
            if len(labels) and (labels.min() < 0 or labels.max() >= self.classes):
                raise DataError(f"{part}Labels must lie in [0, {self.classes}), got [{labels.min()}, {labels.max()}]")
