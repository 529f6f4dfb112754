"""The lock of a ``minidl train`` run on its ``--out`` folder: one run at a time writes there.

``OUT/.minidl.lock`` holds the pid of the run that has it, locked (``flock``) while the run lives. A second run
into the folder is refused at once, naming that pid. A run that died without releasing it (kill -9, a power
cut) leaves the file, but not the lock, which the system drops with the process: the next run takes it over
and says so. The run that ends removes the file, and the folder too when it made it and wrote nothing there (a
run refused by a later check leaves no trace).
"""

import contextlib
import fcntl
import os

from minidl.errors import CheckpointError

LOCK_NAME = ".minidl.lock"


class OutLock:
    """``acquire(say)`` makes the folder and takes its lock (CheckpointError naming the holder's pid when
    another run holds it); ``release()`` gives it back. ``held`` says whether this process holds it."""

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, LOCK_NAME)
        self.handle, self.madeFolder = None, False

    @property
    def held(self):
        return self.handle is not None

    def acquire(self, say):
        if self.held:
            return
        try:
            self.madeFolder = not os.path.isdir(self.folder)
            os.makedirs(self.folder, exist_ok=True)
        except OSError as error:
            raise CheckpointError(f"--out: cannot make the folder {self.folder}: {error}") from error
        while True:  # until the file locked is the one at the path (a releasing run may have removed it meanwhile)
            try:
                handle = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
            except OSError as error:
                raise CheckpointError(f"--out: cannot open the lock {self.path}: {error}") from error
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _readPid(handle)
                os.close(handle)
                raise CheckpointError(
                    f"--out {self.folder} is in use by another minidl run (pid {holder or 'unknown'}): wait for it to "
                    "end, or give this run another --out"
                ) from None
            with contextlib.suppress(OSError):
                if os.fstat(handle).st_ino == os.stat(self.path).st_ino:
                    break
            os.close(handle)
        stale = _readPid(handle)
        if stale:
            say(f"--out {self.folder}: took over the lock left by pid {stale}, which ended without releasing it")
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        self.handle = handle

    def release(self):
        if not self.held:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still locked: a run waiting on this file retries on the new one
        os.close(self.handle)
        self.handle = None
        if self.madeFolder:
            with contextlib.suppress(OSError):
                os.rmdir(self.folder)  # the folder this run made, when it ended before writing anything there


def _readPid(handle):
    """The pid written in the lock file (an empty string when there is none)."""
    try:
        return os.pread(handle, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
