"""Costs: each returns (error, ∂error/∂pred) and accumulates the error over batches."""

from minidl.cost.bce import BCE
from minidl.cost.cost import Cost
from minidl.cost.crossentropy import CrossEntropy
from minidl.cost.mse import MSE
from minidl.errors import CostError

__all__ = ["BCE", "Cost", "CostError", "CrossEntropy", "MSE"]
