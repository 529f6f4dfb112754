"""CrossEntropy on raw scores, as PyTorch's ``cross_entropy``: scores of shape (batch, classes, d1, ...) with
the class axis at 1, integer labels of shape (batch, d1, ...). Each position r (a sample, or a sample's
place along the trailing axes) has p_r = softmax(scores_r) over the classes and label y_r; with class
weights w (default all 1), smoothing ε (``labelSmoothing``) and C classes,

    loss_r = (1 - ε) w_{y_r} (-log p_{r,y_r}) + ε/C Σ_c w_c (-log p_{r,c})
    error  = Σ_r loss_r / Σ_r w_{y_r}, over the positions whose label is not ``ignoreIndex``
    ∂error/∂score_{r,c} = (((1 - ε) w_{y_r} + ε/C Σ_k w_k) p_{r,c} - (1 - ε) w_{y_r} [c = y_r] - ε/C w_c) / Σ_r w_{y_r}

(the unweighted, unsmoothed case is the mean of -log p[label]). The log-softmax is computed stably, from each
position's maximum m_r and sum of exponentials e_r = Σ_c exp(s_{r,c} - m_r) (-log p_{r,c} = m_r + log e_r - s_{r,c}),
and in float32 for float16 scores (a half sum of exponentials loses the small classes' probabilities); the gradient
is returned in the scores' dtype. Smoothing's Σ_c w_c (-log p_{r,c}) is taken as (Σ_c w_c) log e_r - Σ_c w_c
(s_{r,c} - m_r), two terms of one sign (no cancellation). The sums over the positions are float64. A batch whose
every label is ignored (or weighs 0) has error 0 and gradient 0, where PyTorch gives NaN: such a batch carries
nothing to learn.

On a GPU the cost takes 10 launches a call (11 with smoothing, 4 more with ``ignoreIndex``): the labels' range
check (3), the maxima and the sums of exponentials (Reductions over the classes, SoftMax's), each position's loss and
weight (one thread a position), their two sums (a Reduction over the positions), the mean with the gradient's scale,
the gradient (one thread a score), and the accumulator's one. Written out of array operations the loss took 33.

Nothing here reads the device inside a step: the error stays a device scalar (``Cost``), the scale 1 / Σ w_y
reaches the gradient kernel as a one-element device array, and the labels' range is checked by ``noteRange``
(raised at once on the CPU, at the next ``readChecks()`` or ``getMeanError()`` on a GPU; until then an
out-of-range label counts as ignored, so no kernel reads out of bounds).
"""

import numbers

import numpy

from minidl.backend import Elementwise, Reduction, toDevice, xp
from minidl.cost.cost import Cost
from minidl.errors import CostError
from minidl.nn.module import describe
from minidl.nn.softmax import expSumKer, maxKer
from minidl.validation import checkNumber


def _rowsNumpy(scores, top, total, labels, weights, shiftedDot, classes, smooth, weightSum, lse, loss, picked):
    valid = (labels >= 0) & (labels < classes)
    safe = numpy.where(valid, labels, 0)
    with numpy.errstate(all="ignore"):
        lse[...] = top + numpy.log(total)
        rows = scores.reshape(-1, classes)
        nll = lse - rows[numpy.arange(len(labels)), safe]
        rowLoss = (1 - smooth) * weights[safe] * nll
        if smooth != 0:
            rowLoss = rowLoss + smooth / total.dtype.type(classes) * (weightSum * numpy.log(total) - shiftedDot)
    loss[...] = numpy.where(valid, rowLoss, 0)
    picked[...] = numpy.where(valid, weights[safe], 0)


rowsKer = Elementwise(
    "minidl_softmax_ce_rows",
    "raw T scores, T top, T total, int32 labels, raw T weights, raw T shiftedDot, int32 classes, T smooth, "
    "T weightSum",
    "T lse, float64 loss, float64 picked",
    "lse = top + log(total); "
    "if (labels < 0 || labels >= classes) { loss = 0.0; picked = 0.0; } else { "
    "const T weight = weights[labels]; "
    "T rowLoss = ((T)1 - smooth) * weight * (lse - scores[(ptrdiff_t)i * classes + labels]); "
    "if (smooth != (T)0) rowLoss += smooth / (T)classes * (weightSum * log(total) - shiftedDot[i]); "
    "loss = rowLoss; picked = weight; }",
    _rowsNumpy,
)


def _shiftedDotNumpy(scores, top, weights, dot, axis, keepdims):
    dot[...] = ((scores - top) * weights).sum(axis=axis, keepdims=keepdims)


shiftedDotKer = Reduction("minidl_softmax_ce_shifted_dot", "T scores, T top, T weights", "T dot",
                          "(scores - top) * weights", "a + b", "dot = a", "0", _shiftedDotNumpy)


def _sumsNumpy(parts, sums, axis, keepdims):
    sums[...] = parts.sum(axis=axis, keepdims=keepdims)


sumsKer = Reduction("minidl_softmax_ce_sums", "float64 parts", "float64 sums", "parts", "a + b", "sums = a", "0",
                    _sumsNumpy)


def _meanNumpy(sums, error, scale):
    positive = sums[1] > 0
    with numpy.errstate(all="ignore"):
        error[...] = sums[0] / sums[1] if positive else 0.0
        scale[0] = scale.dtype.type(1.0 / sums[1]) if positive else 0


meanKer = Elementwise(
    "minidl_softmax_ce_mean",
    "raw float64 sums",
    "float64 error, raw T scale",
    "const bool positive = sums[1] > 0.0; error = positive ? sums[0] / sums[1] : 0.0; "
    "scale[0] = positive ? (T)(1.0 / sums[1]) : (T)0",
    _meanNumpy,
)


def _crossEntropyGradNumpy(scores, lse, labels, weights, classes, smooth, weightSum, scale, grad):
    numpy.subtract(scores, lse[:, None], out=grad)
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
    "T scores, raw T lse, raw int32 labels, raw T weights, int32 classes, T smooth, T weightSum, raw T scale",
    "T grad",
    "const ptrdiff_t row = i / classes; const int c = i % classes; const int label = labels[row]; "
    "if (label < 0 || label >= classes) { grad = (T)0; } else { "
    "const T picked = weights[label] * ((T)1 - smooth); "
    "grad = ((picked + smooth / (T)classes * weightSum) * exp(scores - lse[row]) "
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
        if ignoreIndex is not None and (isinstance(ignoreIndex, bool) or not isinstance(ignoreIndex, numbers.Real)
                                        or not float(ignoreIndex).is_integer()):
            raise CostError(f"CrossEntropy ignoreIndex must be an integer or None, got {ignoreIndex!r}")
        labelSmoothing = checkNumber(labelSmoothing, "CrossEntropy labelSmoothing", CostError, low=0, high=1)
        if weights is not None:
            host = numpy.asarray(weights.get() if hasattr(weights, "get") else weights)
            if host.ndim != 1 or host.size == 0 or not numpy.issubdtype(host.dtype, numpy.number) \
                    or not numpy.all(numpy.isfinite(host) & (host >= 0)):
                raise CostError(f"CrossEntropy weights must be a 1-D array of finite non-negative numbers per "
                                f"class, got {describe(weights)}")
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
        labels = target.reshape(-1).astype(numpy.int32, copy=False)
        if self.ignoreIndex is not None:
            labels = xp.where(labels == self.ignoreIndex, numpy.int32(-1), labels)
        key = (pred.shape[1], scores.dtype)
        if key not in self._deviceWeights:
            weights = numpy.ones(pred.shape[1]) if self.weights is None else self.weights
            self._deviceWeights[key] = (toDevice(weights, dtype=scores.dtype), float(weights.sum()))
        return (scores, labels, *self._deviceWeights[key])

    def calcError(self, pred, target):
        return self._error(*self._parts(pred, target))[0]

    def calcErrorAndGrad(self, pred, target):
        scores, labels, weights, weightSum = parts = self._parts(pred, target)
        error, scale, lse = self._error(*parts)
        grad = crossEntropyGradKer(scores, lse, labels, weights, scores.shape[1], self.labelSmoothing, weightSum,
                                   scale, xp.empty_like(scores))
        grad = grad.reshape(pred.shape[:1] + pred.shape[2:] + pred.shape[1:2])
        return error, xp.ascontiguousarray(xp.moveaxis(grad, -1, 1)).astype(pred.dtype, copy=False)

    def _error(self, scores, labels, weights, weightSum):
        """(error in float64 of shape (), 1 / Σ w_label over the labels not ignored (0 where that sum is 0) of
        shape (1,), each row's log Σ exp(scores)), device arrays, in five launches (six with smoothing): the rows'
        maxima and sums of exponentials (Reductions over the classes), each row's loss and weight (one thread a
        row), their two sums in float64 (a Reduction over the rows), the mean."""
        rows, classes = scores.shape
        top = maxKer(scores, xp.empty(rows, scores.dtype), axis=1)
        total = expSumKer(scores, top.reshape(rows, 1), xp.empty(rows, scores.dtype), axis=1)
        shiftedDot = top  # unread when there is no smoothing
        if self.labelSmoothing:
            shiftedDot = shiftedDotKer(scores, top.reshape(rows, 1), weights.reshape(1, classes),
                                       xp.empty(rows, scores.dtype), axis=1)
        parts = xp.empty((2, rows), numpy.float64)
        lse, _, _ = rowsKer(scores, top, total, labels, weights, shiftedDot, classes, self.labelSmoothing, weightSum,
                            xp.empty(rows, scores.dtype), parts[0], parts[1])
        sums = sumsKer(parts, xp.empty(2, numpy.float64), axis=1)
        error, scale = meanKer(sums, xp.empty((), numpy.float64), xp.empty(1, scores.dtype))
        return error, scale, lse
