"""Classification metrics against scikit-learn's and a float64 top-k written out here."""

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from minidl import nn
from minidl.backend import toDevice, toHost
from minidl.cost import CrossEntropy
from minidl.errors import DataError
from minidl.testing import kernelPaths, runPath
from minidl.train import Validator
from minidl.train.metrics import ClassMetrics, confusionKer
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


def test_counting_a_batch_makes_no_host_sync_and_matches_sklearn():
    """The confusion counts stay on the device batch after batch (no bincount, which syncs to size its output)."""
    from minidl import backend

    if not backend.isGpu:
        pytest.skip("syncs are counted on the simulated device (MINIDL_BACKEND=simulated, CI's second run)")
    from minidl.backend.simulated import trace

    scores, labels = randomBatches(3, classes=4, sizes=(300, 5))
    metrics = ClassMetrics(topK=(2,))
    deviceBatches = [(toDevice(s), toDevice(label)) for s, label in zip(scores, labels)]
    with trace.recording() as recorded:
        for batchScores, batchLabels in deviceBatches:
            metrics.update(batchScores, batchLabels)
    assert [event.where for event in recorded.syncs] == []
    allLabels = numpy.concatenate(labels)
    predicted = numpy.concatenate(scores).argmax(axis=1)
    numpy.testing.assert_array_equal(metrics.report().confusion, confusion_matrix(allLabels, predicted,
                                                                                  labels=range(4)))


def test_a_label_outside_the_classes_counts_nowhere():
    metrics = ClassMetrics()
    metrics.update(toDevice(numpy.eye(3, dtype=numpy.float32)), toDevice(numpy.array([0, 7, 2], numpy.int64)))
    numpy.testing.assert_array_equal(metrics.report().confusion, [[1, 0, 0], [0, 0, 0], [0, 0, 1]])


@given(classes=st.integers(2, 5), samples=st.integers(2, 40), seed=st.integers(0, 2**16))
def test_the_confusion_kernel_adds_a_batch_on_every_path(classes, samples, seed):
    """Sides of at least 2: one geometry of the Reduction (sides of 1 merge away into bindings of their own), the
    one the signature table records; one sample and one class come through ClassMetrics in the tests above."""
    rng = numpy.random.default_rng(seed)
    labels, predicted = rng.integers(-1, classes + 1, samples), rng.integers(0, classes, samples)
    start = rng.integers(0, 5, classes * classes)
    expected = start.reshape(classes, classes).copy()
    for label, guess in zip(labels, predicted):
        if 0 <= label < classes:
            expected[label, guess] += 1
    for path in ["numpy", *kernelPaths()]:
        cells = numpy.arange(classes * classes).reshape(1, -1)
        (confusion,) = runPath(path, confusionKer, [labels.reshape(-1, 1), predicted.reshape(-1, 1), cells, classes,
                                                    start], axis=0)
        numpy.testing.assert_array_equal(confusion.reshape(classes, classes), expected, err_msg=path)


@pytest.mark.parametrize("ignoreIndex", [-100, 0])
def test_positions_the_cost_ignores_count_nowhere(ignoreIndex):
    # labels equal to CrossEntropy's ignoreIndex (outside the classes, as PyTorch's -100, or one of them) count in no
    # accuracy, as in the cost's mean; scores (batch, classes, length) count each position as a sample
    rng = numpy.random.default_rng(4)
    scores = rng.normal(size=(6, 3, 5)).astype(numpy.float32)
    labels = rng.integers(0, 3, size=(6, 5)).astype(numpy.int32)
    labels[:, :2] = ignoreIndex
    validator = Validator(nn.Identity(), CrossEntropy(ignoreIndex=ignoreIndex), batchsize=4, verbose=False, topK=(2,))
    validator.validateFromHost(scores, labels)
    rows, kept = numpy.moveaxis(scores, 1, -1).reshape(-1, 3), labels.reshape(-1)
    rows, kept = rows[kept != ignoreIndex], kept[kept != ignoreIndex]
    numpy.testing.assert_array_equal(validator.report.confusion,
                                     confusion_matrix(kept, rows.argmax(axis=1), labels=range(3)))
    assert validator.accuracy == pytest.approx(numpy.mean(rows.argmax(axis=1) == kept), rel=1e-12)
    assert validator.report.topK[2] == pytest.approx(topKOracle(rows, kept, 2), rel=1e-12)


def test_a_label_outside_the_classes_counts_in_no_top_k():
    metrics = ClassMetrics(topK=(1, 3))
    metrics.update(toDevice(numpy.eye(3, dtype=numpy.float32)), toDevice(numpy.array([0, 7, 1], numpy.int64)))
    assert metrics.report().topK == {1: 0.5, 3: 1.0}
