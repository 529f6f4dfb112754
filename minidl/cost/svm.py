"""SVM: the multiclass hinge loss on raw scores s with integer labels y (PyTorch's MultiMarginLoss):

    error = 1 / (batch classes) Σ_n Σ_{j ≠ y_n} max(0, 1 + s_nj - s_ny)^q,   q = 1 ("l1") or 2 ("l2");

grad: for j ≠ y, h_nj = [m_nj > 0] (l1) or 2 max(m_nj, 0) (l2) with m_nj = 1 + s_nj - s_ny;
for j = y, -Σ_{k ≠ y} h_nk; all divided by batch · classes.
"""

import numpy

from minidl.backend import Elementwise, xp
from minidl.cost.cost import Cost
from minidl.errors import CostError


def _svmGradNumpy(scores, labels, classes, squared, scale, grad):
    rows = numpy.arange(scores.shape[0])
    numpy.subtract(scores, scores[rows, labels][:, None], out=grad)
    grad += 1
    numpy.maximum(grad, 0, out=grad)
    if squared:
        grad *= 2
    else:
        numpy.sign(grad, out=grad)
    grad[rows, labels] = 0
    grad[rows, labels] = 0 - grad.sum(axis=1)  # not -sum: +0 where nothing is summed, as in the CUDA text
    grad *= scale


svmGradKer = Elementwise(
    "minidl_svm_grad",
    "raw T scores, raw int32 labels, int32 classes, int32 squared, T scale",
    "T grad",
    "const long long row = i / classes; const int j = i % classes; const int label = labels[row]; "
    "const T correct = scores[row * classes + label]; "
    "T g = (T)0; "
    "if (j != label) { "
    "  const T margin = (T)1 + scores[i] - correct; "
    "  if (!(margin <= (T)0)) g = squared ? (T)((T)2 * margin) : (isnan(margin) ? margin : (T)1); "
    "} else { "
    "  for (int k = 0; k < classes; ++k) { "
    "    const T margin = (T)1 + scores[row * classes + k] - correct; "
    "    if (k != label && !(margin <= (T)0)) g -= squared ? (T)((T)2 * margin) : (isnan(margin) ? margin : (T)1); "
    "  } "
    "} "
    "grad = g * scale",
    _svmGradNumpy,
)


class SVM(Cost):
    """``SVM(mode="l1")``: scores of shape (batch, classes), labels integers of shape (batch,); mode "l2"
    squares the margins."""

    def __init__(self, mode="l1"):
        if mode not in ("l1", "l2"):
            raise CostError(f"SVM mode must be 'l1' or 'l2', got {mode!r}")
        self.mode = mode
        super().__init__()

    def checkTarget(self, pred, target):
        self.checkLabels(pred, target)

    def calcError(self, pred, target):
        rows, labels = xp.arange(pred.shape[0]), self.clampLabels(target, pred.shape[1])
        margins = xp.maximum(1 + pred - pred[rows, labels][:, None], 0)
        margins[rows, labels] = 0
        if self.mode == "l2":
            margins *= margins
        return margins.mean()

    def calcGrad(self, pred, target):
        labels = self.clampLabels(target, pred.shape[1])
        return svmGradKer(pred, labels, pred.shape[1], int(self.mode == "l2"), 1.0 / pred.size, xp.empty_like(pred))
