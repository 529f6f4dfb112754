"""The exception hierarchy: every error minidl raises on bad input is a MinidlError."""


class MinidlError(Exception):
    """Base class of every error raised by minidl."""


class BackendError(MinidlError):
    """The device, an array's placement, dtype or shape is not what a kernel expects."""


class ModuleError(MinidlError):
    """A module or container got input it cannot process."""


class CostError(MinidlError):
    """A cost got predictions or targets it cannot score."""


class OptimizerError(MinidlError):
    """An optimizer was misconfigured or used out of order."""


class DistributedError(MinidlError):
    """Data-parallel training cannot start or continue (no MPI, mismatched ranks)."""
