"""minidl: a small deep-learning framework on CuPy (GPU) or NumPy (CPU)."""

from minidl.errors import (
    BackendError,
    CheckpointError,
    CostError,
    DataError,
    DistributedError,
    MinidlError,
    ModuleError,
    OptimizerError,
    TestingError,
)
from minidl.variable import Variable

__version__ = "0.1.0"

__all__ = [
    "BackendError", "CheckpointError", "CostError", "DataError", "DistributedError", "MinidlError", "ModuleError",
    "OptimizerError", "TestingError", "Variable",
]
