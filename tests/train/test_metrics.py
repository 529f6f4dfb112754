"""Classification metrics against scikit-learn's and a float64 top-k written out here."""

import numpy
import pytest
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from minidl.backend import toDevice, toHost
from minidl.cost import CrossEntropy
from minidl.errors import DataError
from minidl.train import Validator
from minidl.train.metrics import ClassMetrics
from tests.train.nets import BLOBS, classifier


def randomBatches(seed, classes=5, sizes=(7, 16, 1, 9)):
    rng = numpy.random.default_rng(seed)
    scores = [rng.normal(size=(n, classes)).astype(numpy.float32) for n in sizes]
    scores[0][0, :] = 0.5  # ties everywhere: the label's score counts as not beaten
    labels = [rng.integers(0, classes - 1, size=n).astype(numpy.int32) for n in sizes]  # the last class never occurs
    return scores, labels


def topKOracle(scores, labels, k):
    hits = 0
    for row, label in zip(scores.astype(numpy.float64), labels):
        hits += sum(value > row[label] for value in row) < k
    return hits / len(labels)


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_of_several_batches_match_sklearn(seed):
    scores, labels = randomBatches(seed)
    metrics = ClassMetrics(topK=(1, 2, 5))
    for batchScores, batchLabels in zip(scores, labels):
        metrics.update(toDevice(batchScores), toDevice(batchLabels))
    report = metrics.report()
    allScores, allLabels = numpy.concatenate(scores), numpy.concatenate(labels)
    predicted = allScores.argmax(axis=1)
    numpy.testing.assert_array_equal(report.confusion, confusion_matrix(allLabels, predicted, labels=range(5)))
    precision, recall, f1, _ = precision_recall_fscore_support(allLabels, predicted, labels=range(5), zero_division=0)
    numpy.testing.assert_allclose(report.precision, precision, rtol=1e-12)
    numpy.testing.assert_allclose(report.recall, recall, rtol=1e-12)
    numpy.testing.assert_allclose(report.f1, f1, rtol=1e-12)
    assert report.accuracy == pytest.approx(numpy.mean(predicted == allLabels), rel=1e-12)
    for k in (1, 2, 5):
        assert report.topK[k] == pytest.approx(topKOracle(allScores, allLabels, k), rel=1e-12)
    assert report.topK[5] == 1.0 and report.recall[4] == 0.0
    assert "precision" in report.table() and len(report.table().splitlines()) == 6


def test_a_nan_score_beats_the_label():
    metrics = ClassMetrics(topK=(1,))
    metrics.update(toDevice(numpy.array([[1.0, numpy.nan], [numpy.nan, 2.0]], numpy.float32)),
                   toDevice(numpy.array([0, 0], numpy.int32)))
    assert metrics.report().topK[1] == 0.0


def test_the_validator_reports_the_metrics_of_its_pass():
    net = classifier()
    validator = Validator(net, CrossEntropy(), batchsize=32, verbose=False, topK=(2,))
    validator.validateFromHost(BLOBS.valData, BLOBS.valLabels, macroBatchSize=64)
    scores = net(toDevice(BLOBS.valData))
    predicted = toHost(scores).argmax(axis=1)
    numpy.testing.assert_array_equal(validator.report.confusion, confusion_matrix(BLOBS.valLabels, predicted))
    assert validator.accuracy == numpy.mean(predicted == BLOBS.valLabels)
    assert validator.report.topK[2] == pytest.approx(topKOracle(toHost(scores), BLOBS.valLabels, 2))


def test_bad_metric_settings_raise():
    with pytest.raises(DataError, match="k >= 1"):
        ClassMetrics(topK=(0,))
    with pytest.raises(DataError, match="no batch"):
        ClassMetrics().report()
