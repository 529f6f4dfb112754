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
)

__version__ = "0.1.0"


def __getattr__(name):
    """``minidl.Variable`` is imported on first use: importing it chooses the backend, which ``python -m minidl``
    must be able to steer (``--device``) after this package is imported and before the backend is."""
    if name == "Variable":
        from minidl.variable import Variable

        return Variable
    raise AttributeError(f"module 'minidl' has no attribute {name!r}")


__all__ = [
    "BackendError", "CheckpointError", "CostError", "DataError", "DistributedError", "MinidlError", "ModuleError",
    "OptimizerError", "Variable",
]
