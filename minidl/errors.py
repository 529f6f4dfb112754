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


class DataError(MinidlError):
    """A data set or a batch of host data is not what training or inference expects."""


class CheckpointError(MinidlError):
    """A checkpoint file is missing, damaged, foreign, or does not match the network or optimizer."""


class DistributedError(MinidlError):
    """Data-parallel training cannot start or continue (no MPI, mismatched ranks)."""


class CallbackError(MinidlError):
    """A fit run's callback is misconfigured (an unknown metric, a folder that does not exist)."""


class TestingError(MinidlError):
    """minidl.testing cannot run (hypothesis is not installed) or was given something it cannot check."""

    __test__ = False  # a name pytest would otherwise try to collect as a test class


class ExportError(MinidlError):
    """A network cannot be written in another framework's format (a module without an ONNX exporter)."""
