"""minidl: a small deep-learning framework on CuPy (GPU) or NumPy (CPU).

``import minidl`` does not choose the device yet: the backend is detected when first imported (by
``minidl.backend``, ``minidl.nn``, ``minidl.Variable``, ...), so the ``minidl`` command can report a forced
backend that cannot start in one line.
"""

from minidl.errors import (
    BackendError,
    CallbackError,
    CheckpointError,
    CostError,
    DataError,
    DistributedError,
    MinidlError,
    ModuleError,
    OptimizerError,
    TestingError,
)

__version__ = "0.1.0"


__all__ = [
    "BackendError", "CheckpointError", "CostError", "DataError", "DistributedError", "MinidlError", "ModuleError",
    "OptimizerError", "Variable",
    "CallbackError",
    "TestingError",
    "load",
    "capture",
]


def __getattr__(name):
    if name == "Variable":
        from minidl.variable import Variable

        return Variable
    if name == "load":
        from minidl.networkfile import loadNetwork

        return loadNetwork
    if name == "capture":
        from minidl.train.capturedstep import capture

        return capture
    raise AttributeError(f"module 'minidl' has no attribute {name!r}")
