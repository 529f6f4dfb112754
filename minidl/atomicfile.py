"""One atomic writer for every whole file minidl writes: checkpoints, module and optimizer files, PyTorch state
dicts, ONNX files, the command's reports and plots.

``writeAtomically(path, payload, error)`` writes the bytes ``payload`` to a temporary file ``.NAME.XXXXXXXX.tmp``
in the target's folder (through a symbolic link: beside the link's target, which is what gets replaced, the link
stays), locked while it is written, flushed to disk (fsync), given the mode the umask gives new files, renamed
over the target, and the folder is flushed too (fsync), so that the rename itself survives a crash. A crash or an
exception mid-write leaves the previous file in place, whole; the next write of the same file removes the
temporaries of crashed writes (those whose lock no live writer holds). An OSError becomes ``error`` (a
MinidlError subclass) naming the file.
"""

import contextlib
import fcntl
import os
import re
import tempfile

TEMPORARY_SUFFIX = ".tmp"


def writeAtomically(path, payload, error):
    """Replace the file at ``path`` by the bytes ``payload`` atomically (see the module docstring); an OSError
    becomes ``error(message)``."""
    path = os.fspath(path)
    target = os.path.realpath(path)  # through a symbolic link, replace the link's target, not the link
    folder, name = os.path.split(target)
    try:
        removeStaleTemporaries(folder, name)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=TEMPORARY_SUFFIX)
    except OSError as cause:
        raise error(f"cannot write {path}: {cause}") from cause
    try:
        with os.fdopen(handle, "wb") as file:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)  # held until closed: tells cleaners this writer is alive
            os.fchmod(file.fileno(), 0o666 & ~currentUmask())
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
            os.replace(temporary, target)
        syncFolder(folder)
    except BaseException as cause:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(cause, OSError):
            raise error(f"cannot write {path}: {cause}") from cause
        raise


def currentUmask():
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def removeStaleTemporaries(folder, name):
    """Delete ``.NAME.XXXXXXXX.tmp`` files in ``folder`` left by crashed writes of ``name``: those whose lock
    no live writer holds (a killed process's lock is released by the system)."""
    pattern = re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}{re.escape(TEMPORARY_SUFFIX)}")
    for entry in os.listdir(folder):
        if not pattern.fullmatch(entry):
            continue
        stray = os.path.join(folder, entry)
        try:
            handle = os.open(stray, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue  # gone already, or not ours to touch
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live writer holds it
        finally:
            os.close(handle)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stray)


def syncFolder(folder):
    """Flush a rename in ``folder`` to disk (POSIX; a no-op where folders cannot be opened)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
