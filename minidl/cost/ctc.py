"""CTC: connectionist temporal classification (Graves et al., 2006), in log space.

Predictions are raw scores (T, N, C) (time, sequences, classes; the softmax is applied here, as CrossEntropy
does); the target is a tuple (labels, inputLengths, targetLengths): labels (N, S) integers padded beyond each
target's length, inputLengths (N,) in [1, T], targetLengths (N,) in [0, S]. With lp = log softmax(scores) over
the classes, and for sequence n the extended label l' = (blank, l1, blank, l2, ..., blank) of 2 S_n + 1 states,

    alpha_0(0) = lp_0(blank), alpha_0(1) = lp_0(l'_1),
    alpha_t(s) = logsumexp(alpha_{t-1}(s), alpha_{t-1}(s-1), alpha_{t-1}(s-2) [l'_s ≠ blank, l'_s ≠ l'_{s-2}])
                 + lp_t(l'_s),
    loss_n = -logsumexp(alpha_{T_n-1}(2 S_n), alpha_{T_n-1}(2 S_n - 1)),

and beta likewise from the end (both including the emission at t). The gradient with respect to the scores, for
t < T_n (zero beyond),

    ∂loss_n/∂scores_t(c) = softmax_t(c) - Σ_{s : l'_s = c} exp(alpha_t(s) + beta_t(s) - lp_t(c) + loss_n).

The error is PyTorch's ``ctc_loss`` of ``log_softmax(scores)``: ``reduction="mean"`` averages loss_n / max(S_n, 1)
over the sequences, ``"sum"`` adds the losses. An impossible alignment (an input too short for its target) gives
an infinite loss, or 0 with a zero gradient under ``zeroInfinity``. Computed in float32 at least; the time
recursion is a loop of array operations over the batch and the states.

No host sync: the lengths and labels are checked on the device on a GPU (``Cost``: raised at the next read); until
then bad lengths are clamped into range and bad labels replaced by a valid non-blank class, so nothing reads out of
bounds, and the error stays a device scalar.
"""

import numpy

from minidl.backend import xp
from minidl.backend.products import matmul
from minidl.cost.cost import Cost
from minidl.errors import CostError
from minidl.nn.module import describe
from minidl.validation import checkInteger

REDUCTIONS = ("mean", "sum")


def _logSumExp(*terms):
    """Elementwise log Σ exp(terms), -inf where every term is -inf."""
    top = terms[0]
    for term in terms[1:]:
        top = xp.maximum(top, term)
    safe = xp.where(top == -numpy.inf, 0, top)
    total = sum(xp.exp(term - safe) for term in terms)
    with numpy.errstate(divide="ignore"):
        return xp.log(total) + safe


def _shifted(values, by, fill):
    """values moved ``by`` states along the last axis (positive: to higher states), ``fill`` where none arrives."""
    out = xp.full_like(values, fill)
    if by > 0:
        out[..., by:] = values[..., :-by]
    else:
        out[..., :by] = values[..., -by:]
    return out


class CTC(Cost):
    """``CTC(blank=0, reduction="mean", zeroInfinity=False)``: see the module's docstring."""

    def __init__(self, blank=0, reduction="mean", zeroInfinity=False):
        self.blank = checkInteger(blank, "CTC blank", CostError, minimum=0)
        if reduction not in REDUCTIONS:
            raise CostError(f"CTC reduction must be 'mean' or 'sum', got {reduction!r}")
        if not isinstance(zeroInfinity, bool):
            raise CostError(f"CTC zeroInfinity must be True or False, got {zeroInfinity!r}")
        self.reduction, self.zeroInfinity = reduction, zeroInfinity
        super().__init__()

    def batchSize(self, pred):
        return pred.shape[1]

    def checkInput(self, pred, target):
        if not isinstance(pred, xp.ndarray) or not numpy.issubdtype(pred.dtype, numpy.floating) or pred.ndim != 3 \
                or pred.size == 0:
            raise CostError(f"{self!r}: scores must be a non-empty floating {xp.__name__} array (time, batch, "
                            f"classes), got {describe(pred)}")
        steps, batch, classes = pred.shape
        if self.blank >= classes:
            raise CostError(f"{self!r}: blank {self.blank} is out of range for {classes} classes")
        if not isinstance(target, (tuple, list)) or len(target) != 3:
            raise CostError(f"{self!r}: target must be (labels, inputLengths, targetLengths), got {describe(target)}")
        labels, inputLengths, targetLengths = target
        for what, array, ndim in (("labels", labels, 2), ("inputLengths", inputLengths, 1),
                                  ("targetLengths", targetLengths, 1)):
            if not isinstance(array, xp.ndarray) or not numpy.issubdtype(array.dtype, numpy.integer) \
                    or array.ndim != ndim or array.shape[0] != batch:
                raise CostError(f"{self!r}: {what} must be an integer {xp.__name__} array of {ndim} dimension(s) "
                                f"with {batch} rows, got {describe(array)}")
        width = labels.shape[1]
        self.noteRange("inputLengths", inputLengths - 1, steps, self._inputLengthError)
        self.noteRange("targetLengths", targetLengths, width + 1, self._targetLengthError)
        targetLengths = xp.clip(targetLengths, 0, width)
        if width:
            used = (xp.arange(width)[None, :] < targetLengths[:, None]).ravel()
            flat = labels.ravel()
            bad = used & ((flat < 0) | (flat >= classes) | (flat == self.blank))
            first = bad.argmax()
            self.noteValues(f"labels of {classes} classes", bad.any(), (first // width, first % width, flat[first]),
                            lambda row, column, value: self._labelError(classes, row, column, value))
            labels = xp.where(bad.reshape(labels.shape), (self.blank + 1) % classes, labels)
        return xp.ascontiguousarray(pred), (labels, xp.clip(inputLengths, 1, steps), targetLengths)

    def _inputLengthError(self, low, high, steps):
        raise CostError(f"{self!r}: inputLengths must lie in [1, {steps}], got values in [{low + 1}, {high + 1}]")

    def _targetLengthError(self, low, high, bound):
        raise CostError(f"{self!r}: targetLengths must lie in [0, {bound - 1}], got values in [{low}, {high}]")

    def _labelError(self, classes, row, column, value):
        raise CostError(f"{self!r}: labels must lie in [0, {classes}) and differ from the blank {self.blank}; "
                        f"sequence {int(row)} has {int(value)} at position {int(column)}")

    def _setup(self, pred, target):
        labels, inputLengths, targetLengths = target
        acc = numpy.promote_types(pred.dtype, numpy.float32)
        scores = pred.astype(acc)
        shifted = scores - scores.max(axis=2, keepdims=True)
        logProbs = shifted - xp.log(xp.exp(shifted).sum(axis=2, keepdims=True))
        batch, states = pred.shape[1], 2 * labels.shape[1] + 1
        extended = xp.full((batch, states), self.blank, dtype=numpy.int64)
        extended[:, 1::2] = labels
        emissions = xp.take_along_axis(logProbs, xp.broadcast_to(extended[None], (pred.shape[0], batch, states)),
                                       axis=2)
        skip = xp.zeros((batch, states), dtype=bool)
        skip[:, 2:] = (extended[:, 2:] != self.blank) & (extended[:, 2:] != extended[:, :-2])
        valid = xp.arange(states)[None, :] < (2 * targetLengths.astype(numpy.int64) + 1)[:, None]
        return logProbs, extended, emissions, skip, valid, inputLengths.astype(numpy.int64), \
            targetLengths.astype(numpy.int64)

    def _alphas(self, emissions, skip, valid, inputLengths):
        steps = emissions.shape[0]
        alphas = xp.empty_like(emissions)
        alpha = xp.full_like(emissions[0], -numpy.inf)
        alpha[:, :2] = emissions[0][:, :2]
        alpha = xp.where(valid, alpha, -numpy.inf)
        alphas[0] = alpha
        for t in range(1, steps):
            step = _logSumExp(alpha, _shifted(alpha, 1, -numpy.inf),
                              xp.where(skip, _shifted(alpha, 2, -numpy.inf), -numpy.inf)) + emissions[t]
            alpha = xp.where(valid & (t < inputLengths)[:, None], step, alpha)
            alphas[t] = alpha
        return alphas

    def _losses(self, alphas, inputLengths, targetLengths):
        rows = xp.arange(alphas.shape[1])
        last = alphas[inputLengths - 1, rows]  # (N, states)
        end = 2 * targetLengths
        final = last[rows, end]
        beforeEnd = xp.where(targetLengths > 0, last[rows, xp.maximum(end - 1, 0)], -numpy.inf)
        return -_logSumExp(final, beforeEnd)

    def _weights(self, targetLengths, losses):
        weights = xp.ones(losses.shape, dtype=losses.dtype)
        if self.reduction == "mean":
            weights = weights / (xp.maximum(targetLengths, 1) * losses.shape[0]).astype(losses.dtype)
        if self.zeroInfinity:
            weights = xp.where(xp.isinf(losses), 0, weights)
        return weights

    def _error(self, losses, weights):
        if self.zeroInfinity:
            losses = xp.where(xp.isinf(losses), 0, losses)
        return (losses * weights).sum()

    def calcError(self, pred, target):
        _, _, emissions, skip, valid, inputLengths, targetLengths = self._setup(pred, target)
        losses = self._losses(self._alphas(emissions, skip, valid, inputLengths), inputLengths, targetLengths)
        return self._error(losses, self._weights(targetLengths, losses))

    def calcErrorAndGrad(self, pred, target):
        logProbs, extended, emissions, skip, valid, inputLengths, targetLengths = self._setup(pred, target)
        alphas = self._alphas(emissions, skip, valid, inputLengths)
        losses = self._losses(alphas, inputLengths, targetLengths)
        steps, batch, states = emissions.shape
        betas = xp.empty_like(emissions)
        rows = xp.arange(batch)
        end = 2 * targetLengths
        start = xp.full((batch, states), -numpy.inf, dtype=emissions.dtype)
        start[rows, end] = 0
        start[rows, xp.maximum(end - 1, 0)] = xp.where(targetLengths > 0, 0, start[rows, xp.maximum(end - 1, 0)])
        skipFrom = _shifted(skip, -2, False)  # s -> s + 2 allowed
        beta = xp.full_like(emissions[0], -numpy.inf)
        for t in range(steps - 1, -1, -1):
            following = _logSumExp(beta, _shifted(beta, -1, -numpy.inf),
                                   xp.where(skipFrom, _shifted(beta, -2, -numpy.inf), -numpy.inf))
            lastStep = (t == inputLengths - 1)[:, None]
            inside = (t < inputLengths - 1)[:, None]
            beta = xp.where(lastStep, start, xp.where(inside, following, -numpy.inf)) + emissions[t]
            beta = xp.where(valid, beta, -numpy.inf)
            betas[t] = beta
        weights = self._weights(targetLengths, losses)
        occupancy = xp.exp(alphas + betas - emissions + xp.where(xp.isinf(losses), 0, losses)[None, :, None])
        onehot = (extended[:, :, None] == xp.arange(logProbs.shape[2])[None, None, :]).astype(occupancy.dtype)
        perClass = matmul(occupancy.transpose(1, 0, 2), onehot).transpose(1, 0, 2)  # (T, N, C)
        running = (xp.arange(steps)[:, None] < inputLengths[None, :])[:, :, None]
        grad = xp.where(running, xp.exp(logProbs) - perClass, 0) * weights[None, :, None]
        return self._error(losses, weights), grad.astype(pred.dtype)
