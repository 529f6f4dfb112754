"""CrossEntropy on raw scores, as PyTorch's ``cross_entropy``: scores of shape (batch, classes, d1, ...) with
the class axis at 1, integer labels of shape (batch, d1, ...). Each position r (a sample, or a sample's
place along the trailing axes) has p_r = softmax(scores_r) over the classes and label y_r; with class
weights w (default all 1), smoothing ε (``labelSmoothing``) and C classes,

    loss_r = (1 - ε) w_{y_r} (-log p_{r,y_r}) + ε/C Σ_c w_c (-log p_{r,c})
    error  = Σ_r loss_r / Σ_r w_{y_r}, over the positions whose label is not ``ignoreIndex``
    ∂error/∂score_{r,c} = (((1 - ε) w_{y_r} + ε/C Σ_k w_k) p_{r,c} - (1 - ε) w_{y_r} [c = y_r] - ε/C w_c) / Σ_r w_{y_r}

(the unweighted, unsmoothed case is the mean of -log p[label]). The log-softmax is computed stably, after
subtracting each position's max, and in float32 for float16 scores (a half sum of exponentials loses the small
classes' probabilities); the gradient is returned in the scores' dtype. A batch whose every label is ignored
(or weighs 0) has error 0 and gradient 0, where PyTorch gives NaN: such a batch carries nothing to learn.

Nothing here reads the device inside a step: the error stays a device scalar (``Cost``), the scale 1 / Σ w_y
reaches the gradient kernel as a one-element device array, and the labels' range is checked by ``noteRange``
(raised at once on the CPU, at the next ``readChecks()`` or ``getMeanError()`` on a GPU; until then an
out-of-range label counts as ignored, so no kernel reads out of bounds).
"""

import numpy

from minidl.backend import Elementwise, toDevice, xp
from minidl.cost.cost import Cost
from minidl.errors import CostError
from minidl.nn.module import describe


def _crossEntropyGradNumpy(shifted, logsum, labels, weights, classes, smooth, weightSum, scale, grad):
    numpy.subtract(shifted, logsum[:, None], out=grad)
    numpy.exp(grad, out=grad)
    valid = (labels >= 0) & (labels < classes)
    perClass = smooth / grad.dtype.type(classes)  # in T, as the kernel's smooth / (T)classes (int32 would widen)
    picked = numpy.where(valid, weights[numpy.where(valid, labels, 0)], 0)
    grad *= numpy.where(valid, (1 - smooth) * picked + perClass * weightSum, 0)[:, None]
    rows = numpy.flatnonzero(valid)
    grad[rows, labels[rows]] -= (1 - smooth) * picked[rows]
    grad -= numpy.where(valid[:, None], perClass * weights[None, :], 0)
    grad *= scale[0]
    grad[~valid] = 0  # an ignored row is 0, NaN scores included (as the kernel's branch gives)


crossEntropyGradKer = Elementwise(
    "minidl_softmax_ce_grad",
    "T shifted, raw T logsum, raw int32 labels, raw T weights, int32 classes, T smooth, T weightSum, raw T scale",
    "T grad",
    "const ptrdiff_t row = i / classes; const int c = i % classes; const int label = labels[row]; "
    "if (label < 0 || label >= classes) { grad = (T)0; } else { "
    "const T picked = weights[label] * ((T)1 - smooth); "
    "grad = ((picked + smooth / (T)classes * weightSum) * exp(shifted - logsum[row]) "
    "- (label == c ? picked : (T)0) - smooth / (T)classes * weights[c]) * scale[0]; }",
    _crossEntropyGradNumpy,
)


def logSoftmaxParts(scores):
    """(scores - rowmax, log Σ exp(scores - rowmax)) per row: log softmax = shifted - logsum, without overflow."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted, xp.log(xp.exp(shifted).sum(axis=1))


def _wide(scores):
    """float16 scores as float32, where the softmax's sums are computed; others as they are."""
    return scores.astype(numpy.float32) if scores.dtype == numpy.float16 else scores


def classesLast(array):
    """(batch, classes, d1, ...) as a C-contiguous (positions, classes) matrix: the class axis moved last."""
    return xp.ascontiguousarray(xp.moveaxis(array, 1, -1)).reshape(-1, array.shape[1])


class CrossEntropy(Cost):
    """``CrossEntropy(ignoreIndex=None, labelSmoothing=0.0, weights=None)``: softmax cross-entropy of scores
    (batch, classes, ...) against labels (batch, ...). Labels equal to ``ignoreIndex`` (PyTorch uses -100)
    count for nothing; ``weights`` is a host or device array of one non-negative weight per class."""

    def __init__(self, ignoreIndex=None, labelSmoothing=0.0, weights=None):
        if ignoreIndex is not None and (isinstance(ignoreIndex, bool) or int(ignoreIndex) != ignoreIndex):
            raise CostError(f"CrossEntropy ignoreIndex must be an integer or None, got {ignoreIndex!r}")
        if not 0.0 <= labelSmoothing <= 1.0:
            raise CostError(f"CrossEntropy labelSmoothing must lie in [0, 1], got {labelSmoothing!r}")
        if weights is not None:
            host = numpy.asarray(weights.get() if hasattr(weights, "get") else weights)
            if host.ndim != 1 or host.size == 0 or not numpy.issubdtype(host.dtype, numpy.number) \
                    or not numpy.all(host >= 0):
                raise CostError(f"CrossEntropy weights must be a 1-D array of non-negative numbers per class, "
                                f"got {describe(weights)}")
            weights = host.astype(numpy.float64)
        self.ignoreIndex = None if ignoreIndex is None else int(ignoreIndex)
        self.labelSmoothing = float(labelSmoothing)
        self.weights = weights
        self._deviceWeights = {}
        super().__init__()

    def checkTarget(self, pred, target):
        if pred.ndim < 2:
            raise CostError(f"{self!r}: scores must have shape (batch, classes, ...), got {pred.shape}")
        labelShape = pred.shape[:1] + pred.shape[2:]
        if not numpy.issubdtype(target.dtype, numpy.integer) or target.shape != labelShape:
            raise CostError(f"{self!r}: labels must be integers of shape {labelShape}, got {describe(target)}")
        classes = pred.shape[1]
        if self.weights is not None and self.weights.size != classes:
            raise CostError(f"{self!r}: {self.weights.size} class weights for {classes} classes")
        kept = target if self.ignoreIndex is None else xp.where(target == self.ignoreIndex, 0, target)
        self.noteRange("labels", kept, classes, self._labelError)

    def _labelError(self, low, high, classes):
        bad = low if low < 0 else high
        ignored = "" if self.ignoreIndex is None else f" (ignoreIndex is {self.ignoreIndex})"
        raise CostError(f"{self!r}: label {bad} is out of range for {classes} classes{ignored}")

    def _parts(self, pred, target):
        """Scores as (positions, classes), labels (-1 where ignored), the class weights on the device (copied
        once per classes and dtype) and their sum."""
        scores = classesLast(_wide(pred))
        labels = target.reshape(-1).astype(numpy.int32)
        if self.ignoreIndex is not None:
            labels = xp.where(labels == self.ignoreIndex, numpy.int32(-1), labels)
        key = (pred.shape[1], scores.dtype)
        if key not in self._deviceWeights:
            weights = numpy.ones(pred.shape[1]) if self.weights is None else self.weights
            self._deviceWeights[key] = (toDevice(weights, dtype=scores.dtype), float(weights.sum()))
        return (scores, labels, *self._deviceWeights[key])

    def calcError(self, pred, target):
        scores, labels, weights, _ = self._parts(pred, target)
        return self._error(*logSoftmaxParts(scores), labels, weights)[0]

    def calcErrorAndGrad(self, pred, target):
        scores, labels, weights, weightSum = self._parts(pred, target)
        shifted, logsum = logSoftmaxParts(scores)
        error, scale = self._error(shifted, logsum, labels, weights)
        grad = crossEntropyGradKer(shifted, logsum, labels, weights, scores.shape[1], self.labelSmoothing,
                                   weightSum, scale, xp.empty_like(scores))
        grad = grad.reshape(pred.shape[:1] + pred.shape[2:] + pred.shape[1:2])
        return error, xp.ascontiguousarray(xp.moveaxis(grad, -1, 1)).astype(pred.dtype, copy=False)

    def _error(self, shifted, logsum, labels, weights):
        """(error in float64, 1 / Σ w_label over the labels not ignored, or 0 where that sum is 0), device arrays
        of shape () and (1,)."""
        valid = (labels >= 0) & (labels < shifted.shape[1])
        safe = xp.where(valid, labels, 0)
        picked = xp.where(valid, xp.take(weights, safe), 0)
        nll = logsum - shifted[xp.arange(shifted.shape[0]), safe]
        loss = (1 - self.labelSmoothing) * picked * nll
        if self.labelSmoothing:
            smoothed = (logsum[:, None] - shifted) @ weights
            loss = loss + xp.where(valid, self.labelSmoothing / shifted.shape[1] * smoothed, 0)
        total = picked.sum()
        positive = total > 0
        divisor = xp.where(positive, total, 1)
        error = xp.where(positive, loss.sum().astype(numpy.float64) / divisor.astype(numpy.float64), 0.0)
        return error, (positive / divisor).reshape(1)
