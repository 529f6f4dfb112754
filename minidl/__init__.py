"""minidl: a small deep-learning framework on CuPy (GPU) or NumPy (CPU)."""

from minidl.errors import BackendError, CostError, DistributedError, MinidlError, ModuleError, OptimizerError
from minidl.variable import Variable

__version__ = "0.1.0"

__all__ = ["BackendError", "CostError", "DistributedError", "MinidlError", "ModuleError", "OptimizerError", "Variable"]
