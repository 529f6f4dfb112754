"""Costs: each returns (error, ∂error/∂pred) and accumulates the error over batches."""

from minidl.cost.abs import Abs
from minidl.cost.bce import BCE
from minidl.cost.cost import Cost
from minidl.cost.crossentropy import CrossEntropy
from minidl.cost.ctc import CTC
from minidl.cost.hinge import Hinge
from minidl.cost.kldivergence import KLDivergence
from minidl.cost.l1hinge import L1Hinge
from minidl.cost.mse import MSE
from minidl.cost.multi import Multi
from minidl.cost.smoothl1 import SmoothL1
from minidl.cost.svm import SVM
from minidl.errors import CostError

__all__ = [
    "Abs", "BCE", "CTC", "Cost", "CostError", "CrossEntropy", "Hinge", "KLDivergence", "L1Hinge", "MSE", "Multi", "SVM",
    "SmoothL1",
]
