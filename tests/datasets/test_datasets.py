"""Data sets: the digits split against scikit-learn's own arrays, the synthetic blobs, length checks."""

import sys

import numpy
import pytest
from sklearn.datasets import load_digits

from minidl.datasets import DataSet, gaussianBlobs, loadDigits
from minidl.errors import DataError


def test_digits_split_is_every_fifth_image_of_each_class():
    digits = load_digits()
    data = loadDigits()
    assert (len(data.trainData), len(data.valData), data.classes) == (1442, 355, 10)
    assert data.trainData.dtype == numpy.float32 and data.trainLabels.dtype == numpy.int32
    assert data.trainData.shape[1:] == (64,) and 0 <= data.trainData.min() and data.trainData.max() == 1
    for label in range(10):
        rows = numpy.flatnonzero(digits.target == label)
        validation, training = rows[4::5], numpy.setdiff1d(rows, rows[4::5])
        numpy.testing.assert_array_equal(data.valData[data.valLabels == label] * 16, digits.data[validation])
        numpy.testing.assert_array_equal(data.trainData[data.trainLabels == label] * 16, digits.data[training])


def test_digits_as_images():
    flat, images = loadDigits(), loadDigits(flat=False)
    assert images.trainData.shape == (1442, 1, 8, 8)
    numpy.testing.assert_array_equal(images.trainData.reshape(1442, 64), flat.trainData)
    numpy.testing.assert_array_equal(images.valLabels, flat.valLabels)


def test_digits_without_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataError, match=r"minidl\[datasets\]"):
        loadDigits()


def test_blobs_are_balanced_fixed_by_their_seed_and_clustered():
    blobs = gaussianBlobs(samples=400, features=5, classes=4, spread=0.5, seed=1)
    assert (blobs.trainData.shape, blobs.valData.shape) == ((320, 5), (80, 5))
    labels = numpy.concatenate([blobs.trainLabels, blobs.valLabels])
    assert numpy.bincount(labels).tolist() == [100] * 4
    again, other = gaussianBlobs(400, 5, 4, 0.5, seed=1), gaussianBlobs(400, 5, 4, 0.5, seed=2)
    numpy.testing.assert_array_equal(again.trainData, blobs.trainData)
    assert not numpy.array_equal(other.trainData, blobs.trainData)
    means = numpy.stack([blobs.trainData[blobs.trainLabels == c].mean(axis=0) for c in range(4)])
    nearest = ((blobs.valData[:, None, :] - means[None]) ** 2).sum(axis=2).argmin(axis=1)
    assert numpy.mean(nearest == blobs.valLabels) > 0.95, "samples lie around their class centre"


def test_bad_data_sets_are_refused():
    data, labels = numpy.zeros((5, 2), numpy.float32), numpy.zeros(4, numpy.int32)
    with pytest.raises(DataError, match="trainData has 5 samples but trainLabels has 4 labels"):
        DataSet(data, labels, data, labels[:5], classes=2)
    with pytest.raises(DataError, match=r"valLabels must lie in \[0, 2\)"):
        DataSet(data, numpy.zeros(5, numpy.int32), data, numpy.full(5, 2, numpy.int32), classes=2)
    with pytest.raises(DataError, match="classes >= 2"):
        gaussianBlobs(classes=1)


@pytest.mark.parametrize("samples, fraction, sizes", [(10, 0.95, (1, 9)), (10, 0.01, (9, 1)), (2, 0.5, (1, 1))])
def test_blobs_keep_at_least_one_sample_in_each_part(samples, fraction, sizes):
    blobs = gaussianBlobs(samples=samples, validationFraction=fraction)
    assert (len(blobs.trainData), len(blobs.valData)) == sizes


@pytest.mark.parametrize("kwargs", [{"samples": 10.5}, {"features": 2.0}, {"classes": True}, {"spread": -1.0},
                                    {"spread": float("nan")}, {"validationFraction": 1.0}])
def test_bad_blob_arguments_are_a_data_error(kwargs):
    with pytest.raises(DataError, match="gaussianBlobs needs integers samples >= 2"):
        gaussianBlobs(**kwargs)
