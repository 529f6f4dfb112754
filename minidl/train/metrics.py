"""Classification metrics: a confusion matrix and top-k hits counted on the device batch by batch, and read back
to the host once, when the pass is over: accuracy, top-k accuracy, per-class precision, recall and F1.

A batch's confusion counts are added by ``confusionKer``, a Reduction over the batch: output cell l classes + p
(label l, prediction p) of the classes x classes matrix counts the batch's samples with that pair, reduced by a
block of threads per few cells on a GPU (no thread walks the batch alone): no atomics, no sync (CuPy's
``bincount`` reads max(x) to size its output, a sync per batch), the same integer counts on every path. A sample
whose label lies outside range(classes) (or is the cost's ``ignoreIndex``) counts nowhere (the labels' range is the
cost's check, read at the same points).
"""

from dataclasses import dataclass

import numpy

from minidl.backend import Reduction, toHost, xp
from minidl.cost.crossentropy import classesLast
from minidl.errors import DataError


def _confusionNumpy(labels, predicted, cells, classes, confusion, axis, keepdims):
    labels, predicted = labels.ravel(), predicted.ravel()
    valid = (labels >= 0) & (labels < classes)
    confusion += numpy.bincount(labels[valid] * classes + predicted[valid], minlength=confusion.size)


# confusion[cell] += #{samples s: 0 <= labels[s] < classes and labels[s] classes + predicted[s] = cell}, reduced over
# axis 0 of (samples, classes²): labels and predicted are (samples, 1), cells (1, classes²) holds each cell's index.
confusionKer = Reduction(
    "minidl_confusion_count",
    "int64 labels, int64 predicted, int64 cells, int64 classes",
    "int64 confusion",
    "(labels >= 0 && labels < classes && labels * classes + predicted == cells) ? 1 : 0",
    "a + b",
    "confusion = confusion + a",
    "0",
    _confusionNumpy,
)


@dataclass(frozen=True)
class ClassReport:
    """Host results of one pass. ``confusion[i, j]`` counts samples of class i scored highest at class j.

    ``precision[c] = confusion[c, c] / Σ_i confusion[i, c]``, ``recall[c] = confusion[c, c] / Σ_j confusion[c, j]``,
    ``f1[c] = 2 precision recall / (precision + recall)``, each 0 where its denominator is 0 (as scikit-learn's
    ``zero_division=0``); ``topK[k]`` is the fraction of samples whose label's score is beaten by fewer than k
    scores (ties go to the label; a NaN score beats it).
    """

    confusion: numpy.ndarray
    topK: dict

    @property
    def samples(self):
        return int(self.confusion.sum())

    @property
    def accuracy(self):
        return float(numpy.trace(self.confusion) / max(self.samples, 1))

    @staticmethod
    def _ratio(numerator, denominator):
        return numpy.divide(numerator, denominator, out=numpy.zeros(len(numerator)), where=denominator > 0)

    @property
    def precision(self):
        return self._ratio(numpy.diag(self.confusion).astype(numpy.float64), self.confusion.sum(axis=0))

    @property
    def recall(self):
        return self._ratio(numpy.diag(self.confusion).astype(numpy.float64), self.confusion.sum(axis=1))

    @property
    def f1(self):
        precision, recall = self.precision, self.recall
        return self._ratio(2 * precision * recall, precision + recall)

    def table(self):
        """The per-class table as text: class, precision, recall, F1, support."""
        lines = [f"{'class':>5}  {'precision':>9}  {'recall':>9}  {'F1':>9}  {'support':>7}"]
        support = self.confusion.sum(axis=1)
        for c, (p, r, f) in enumerate(zip(self.precision, self.recall, self.f1)):
            lines.append(f"{c:>5}  {p:>9.4f}  {r:>9.4f}  {f:>9.4f}  {support[c]:>7d}")
        return "\n".join(lines)

    def toDict(self):
        """JSON-able: the confusion matrix, accuracy, top-k, and the per-class lists."""
        return {
            "confusion": self.confusion.tolist(), "accuracy": self.accuracy,
            "topK": {str(k): value for k, value in self.topK.items()}, "precision": self.precision.tolist(),
            "recall": self.recall.tolist(), "f1": self.f1.tolist(),
        }


class ClassMetrics:
    """``update(scores, labels)`` per device batch (no transfer, no synchronisation), ``report()`` once per pass."""

    def __init__(self, topK=()):
        self.topK = tuple(topK)
        for k in self.topK:
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise DataError(f"top-k accuracy needs integers k >= 1, got {topK!r}")
        self.reset()

    def reset(self):
        self.confusion = self.cells = None
        self.hits = {}

    def update(self, scores, labels, ignoreIndex=None):
        """Count one batch on the device: ``scores`` (samples, classes, ...) and integer ``labels`` (samples, ...), as
        CrossEntropy takes them (each position a sample). A label outside range(classes), or equal to
        ``ignoreIndex`` (the cost's), counts nowhere, in the confusion matrix and the top-k hits alike."""
        if scores.ndim != 2:
            scores = classesLast(scores)
        samples, classes = scores.shape
        labels = labels.reshape(-1).astype(numpy.int64, copy=False)
        if ignoreIndex is not None:
            labels = xp.where(labels == ignoreIndex, -1, labels)
        if self.confusion is None:
            self.confusion = xp.zeros(classes * classes, dtype=numpy.int64)
            self.cells = xp.arange(classes * classes, dtype=numpy.int64).reshape(1, -1)
            self.hits = {k: xp.zeros((), dtype=numpy.int64) for k in self.topK}
        elif self.confusion.size != classes * classes:
            raise DataError(f"scores of {classes} classes after batches of {int(self.confusion.size ** 0.5)}")
        predicted = scores.argmax(axis=1).astype(numpy.int64, copy=False)
        confusionKer(labels.reshape(samples, 1), predicted.reshape(samples, 1), self.cells, classes, self.confusion,
                     axis=0)
        if self.topK:
            valid = (labels >= 0) & (labels < classes)
            labelScores = scores[xp.arange(samples), xp.where(valid, labels, 0)][:, None]
            beaten = (~(labelScores >= scores)).sum(axis=1)
            for k in self.topK:
                self.hits[k] += ((beaten < k) & valid).sum()

    def report(self):
        """The pass's ClassReport (one transfer of the counts to the host)."""
        if self.confusion is None:
            raise DataError("no batch was counted")
        confusion = toHost(self.confusion)
        classes = int(round(len(confusion) ** 0.5))
        confusion = confusion.reshape(classes, classes)
        samples = max(int(confusion.sum()), 1)
        return ClassReport(confusion, {k: int(toHost(hits)) / samples for k, hits in self.hits.items()})
