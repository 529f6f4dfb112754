"""CrossEntropy on raw scores: p = softmax(scores) per row, error = mean over rows of -log p[label],
grad = (p - onehot(label)) / batch. The log-softmax is computed stably, after subtracting each row's max, and in
float32 for float16 scores (a half sum of exponentials loses the small classes' probabilities); the gradient is
returned in the scores' dtype."""

import numpy

from minidl.backend import Elementwise, xp
from minidl.cost.cost import Cost


def _softmaxGradNumpy(shifted, logsum, labels, classes, scale, grad):
    numpy.subtract(shifted, logsum[:, None], out=grad)
    numpy.exp(grad, out=grad)
    grad[numpy.arange(grad.shape[0]), labels] -= 1
    grad *= scale


softmaxGradKer = Elementwise(
    "minidl_softmax_ce_grad",
    "T shifted, raw T logsum, raw int32 labels, int32 classes, T scale",
    "T grad",
    "const int row = i / classes; "
    "grad = (exp(shifted - logsum[row]) - (labels[row] == i % classes ? (T)1 : (T)0)) * scale",
    _softmaxGradNumpy,
)


def logSoftmaxParts(scores):
    """(scores - rowmax, log Σ exp(scores - rowmax)) per row: log softmax = shifted - logsum, without overflow."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted, xp.log(xp.exp(shifted).sum(axis=1))


def _wide(scores):
    """float16 scores as float32, where the softmax's sums are computed; others as they are."""
    return scores.astype(numpy.float32) if scores.dtype == numpy.float16 else scores


class CrossEntropy(Cost):
    """Softmax cross-entropy: scores of shape (batch, classes), labels an integer array of shape (batch,)."""

    def checkTarget(self, pred, target):
        self.checkLabels(pred, target)

    def calcError(self, pred, target):
        return self._error(*logSoftmaxParts(_wide(pred)), target)

    def calcErrorAndGrad(self, pred, target):
        wide = _wide(pred)
        shifted, logsum = logSoftmaxParts(wide)
        labels = target.astype(numpy.int32, copy=False)
        grad = softmaxGradKer(shifted, logsum, labels, pred.shape[1], 1.0 / pred.shape[0], xp.empty_like(wide))
        return self._error(shifted, logsum, labels), grad.astype(pred.dtype, copy=False)

    @staticmethod
    def _error(shifted, logsum, labels):
        picked = shifted[xp.arange(shifted.shape[0]), labels]
        return float((logsum - picked).mean())
