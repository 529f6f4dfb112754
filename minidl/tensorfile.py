"""Tensor files: named host arrays plus string metadata in the safetensors format, written atomically.

Any safetensors reader opens them (``safetensors.numpy.load_file``, ``safetensors.torch.load_file``, ...).
minidl adds two metadata entries: ``format`` names the writer ("minidl.module", "minidl.optimizer",
"minidl.checkpoint") so that a foreign file is refused, and ``crc32`` checks the tensors' bytes so that a
damaged file is refused rather than loaded with wrong values.

A write goes to a temporary file beside the target, is flushed to disk (fsync) and renamed over the
target: a crash or an exception mid-write leaves the previous file in place, whole.
"""

import contextlib
import os
import tempfile
import zlib

import numpy
import safetensors.numpy
from safetensors import SafetensorError, safe_open

from minidl.backend import xp
from minidl.errors import CheckpointError


def checksum(tensors):
    """CRC-32 over the tensors' names, dtypes, shapes and bytes, in name order, as a decimal string."""
    crc = 0
    for name in sorted(tensors):
        array = numpy.asarray(tensors[name], order="C")
        crc = zlib.crc32(f"{name}:{array.dtype.str}:{array.shape};".encode(), crc)
        crc = zlib.crc32(array.reshape(-1).view(numpy.uint8), crc)
    return str(crc)


def writeTensors(path, tensors, metadata):
    """Write host arrays ``tensors`` (name -> numpy array) and ``metadata`` (str -> str) to ``path`` atomically."""
    tensors = {name: numpy.asarray(array, order="C") for name, array in tensors.items()}
    payload = safetensors.numpy.save(tensors, metadata={**metadata, "crc32": checksum(tensors)})
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as error:
        raise CheckpointError(f"cannot write {path}: {error}") from error
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise CheckpointError(f"cannot write {path}: {error}") from error
        raise
    _syncFolder(folder)


def _syncFolder(folder):
    """Flush the rename itself to disk (POSIX; a no-op where folders cannot be opened)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def readTensors(path, fileFormat):
    """``(tensors, metadata)`` of a file written with ``metadata["format"] == fileFormat``.

    CheckpointError when the file is missing, is not a safetensors file, is truncated or damaged (its
    checksum does not match), or was written by something else.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint file at {path}")
    try:
        with safe_open(path, framework="numpy") as file:
            metadata = file.metadata() or {}
            tensors = {name: file.get_tensor(name) for name in file.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or damaged?): {error}") from error
    if metadata.get("format") != fileFormat:
        raise CheckpointError(
            f"{path} is not a {fileFormat} file: its metadata format is {metadata.get('format')!r}"
        )
    if metadata.get("crc32") != checksum(tensors):
        raise CheckpointError(f"{path} is damaged: its tensors do not match the checksum written with them")
    return tensors, metadata


def checkTensors(tensors, expected, path):
    """CheckpointError unless ``tensors`` holds exactly the names of ``expected`` with their shapes and dtypes."""
    missing = [name for name in expected if name not in tensors]
    unexpected = [name for name in tensors if name not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match: missing tensors {missing[:8]}, unexpected tensors {unexpected[:8]}"
        )
    for name, array in expected.items():
        found = tensors[name]
        if tuple(found.shape) != tuple(array.shape) or numpy.dtype(found.dtype) != numpy.dtype(array.dtype):
            raise CheckpointError(
                f"{path}: tensor {name!r} is {found.dtype} {tuple(found.shape)}, expected "
                f"{array.dtype} {tuple(array.shape)}"
            )


def copyTensors(targets, tensors):
    """Copy host arrays into the device arrays ``targets`` (name -> array) in place, keeping views valid."""
    for name, target in targets.items():
        target[...] = xp.asarray(tensors[name])
