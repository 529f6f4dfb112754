"""L1Hinge: a hinge on the L1 distance of siamese pairs (PuzzleLib's). Predictions are a pair [x1, x2] of (N, D)
embeddings, targets (N,) integer labels: 1 for a similar pair, 0 for a dissimilar one. With d = x1 - x2,

    error = 1 / (N D) · Σ_{n, k} ( |d[n, k]|                  where label[n] = 1,
                                    max(0, 1 - |d[n, k]|)      where label[n] = 0 ),

    ∂error/∂x1 = -∂error/∂x2 = sign(d) / (N D) for similar pairs, -sign(d) [|d| < 1] / (N D) for dissimilar ones
    (sign(0) = 0: the subgradient at the kink, as Abs's). NaN in d gives NaN gradients.
"""

import numpy

from minidl.backend import Elementwise, xp
from minidl.cost.cost import Cost
from minidl.errors import CostError
from minidl.nn.module import describe


def _l1HingeGradNumpy(x1, x2, labels, width, scale, grad1, grad2):
    d = x1 - x2
    sign = numpy.where(d > 0, 1, numpy.where(d < 0, -1, d * 0)).astype(d.dtype)
    similar = numpy.repeat(labels != 0, width).reshape(d.shape)
    numpy.multiply(sign, scale, out=grad1)
    numpy.copyto(grad1, -grad1, where=~similar)
    numpy.copyto(grad1, 0, where=~similar & ~(numpy.abs(d) < 1) & ~numpy.isnan(d))
    numpy.negative(grad1, out=grad2)


# element i of the (N, D) pair belongs to sample i / width
l1HingeGradKer = Elementwise(
    "minidl_l1_hinge_grad", "T x1, T x2, raw int32 labels, int32 width, T scale", "T grad1, T grad2",
    "const T d = x1 - x2; "
    "const T sign = d > (T)0 ? (T)1 : (d < (T)0 ? (T)(-1) : (T)(d * (T)0)); "
    "const T g = labels[i / width] != 0 ? (T)(sign * scale) "
    ": (fabs(d) < (T)1 ? (T)(-sign * scale) : (isnan(d) ? d : (T)0)); "
    "grad1 = g; grad2 = -g",
    _l1HingeGradNumpy,
)


class L1Hinge(Cost):
    """L1 hinge on siamese pairs: ``cost([x1, x2], labels)`` returns (error, [∂x1, ∂x2])."""

    def batchSize(self, pred):
        return pred[0].shape[0]

    def checkInput(self, pred, target):
        if not isinstance(pred, (list, tuple)) or len(pred) != 2:
            raise CostError(f"{self!r}: predictions must be a pair [x1, x2], got {describe(pred)}")
        first, second = pred
        for what, array in (("x1", first), ("x2", second)):
            if not isinstance(array, xp.ndarray) or not numpy.issubdtype(array.dtype, numpy.floating) \
                    or array.ndim != 2 or array.size == 0:
                raise CostError(f"{self!r}: {what} must be a non-empty floating {xp.__name__} array (batch, "
                                f"features), got {describe(array)}")
        if second.shape != first.shape or second.dtype != first.dtype:
            raise CostError(f"{self!r}: x2 must be {first.dtype} {first.shape} like x1, got {describe(second)}")
        if not isinstance(target, xp.ndarray) or not numpy.issubdtype(target.dtype, numpy.integer) \
                or target.shape != first.shape[:1]:
            raise CostError(f"{self!r}: labels must be integers of shape ({first.shape[0]},), got "
                            f"{describe(target)}")
        self.noteRange("labels", target, 2, self._labelError)
        return [xp.ascontiguousarray(first), xp.ascontiguousarray(second)], target.astype(numpy.int32)

    def _labelError(self, low, high, bound):
        raise CostError(f"{self!r}: labels must be 0 (dissimilar) or 1 (similar), got values in [{low}, {high}]")

    def calcError(self, pred, target):
        distance = xp.abs(pred[0] - pred[1])
        similar = (target != 0)[:, None]
        return xp.where(similar, distance, xp.maximum(1 - distance, 0)).mean()

    def calcGrad(self, pred, target):
        first, second = pred
        grads = l1HingeGradKer(first, second, target, first.shape[1], 1.0 / first.size, xp.empty_like(first),
                               xp.empty_like(second))
        return list(grads)
