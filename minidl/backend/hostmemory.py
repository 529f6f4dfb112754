"""Freed host memory kept for the next array (glibc's malloc), where minidl's arrays live in host memory.

Each forward and backward pass makes and frees the same large arrays again. glibc's malloc gives an array larger
than its mmap threshold (128 KiB at first, raised to the largest such array freed, at most 32 MiB) pages of its own,
and hands the free top of its heap back to the system once that exceeds twice the threshold: a pass whose arrays
add up to more than twice its largest one then faults in and zeroes all its pages again, every time. Measured on
the 2-core VM: the LSTM layer of ``benchmarks.sequence`` (forward and backward) took about 2,000 page faults and
21-22 ms a call, 0 and 15.6-16.2 ms with its memory kept. So minidl keeps freed host memory for reuse, as a GPU
framework's caching allocator keeps device memory:

    mallopt(M_MMAP_THRESHOLD, 32 MiB)   arrays below 32 MiB (glibc's largest threshold) come from the heap
    mallopt(M_TRIM_THRESHOLD, 1 GiB)    the heap's free top goes back to the system beyond 1 GiB only

The process's resident memory then stays near its peak, the malloc of every library in the process included.
``MINIDL_HOST_MEMORY=release`` leaves malloc as it was. Only glibc has these settings: elsewhere (macOS, musl)
nothing is set, and ``keepFreedMemory`` says so in what it returns.
"""

import ctypes
import functools
import os

from minidl.errors import BackendError

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems)
TRIM_THRESHOLD = 1 << 30
SETTINGS = ("keep", "release")


@functools.cache
def keepFreedMemory():
    """Set glibc's malloc to keep freed memory (see the module), once per process, unless MINIDL_HOST_MEMORY says
    ``release``; return what was done: "kept", "released" (asked) or "not glibc"."""
    setting = os.environ.get("MINIDL_HOST_MEMORY", "").strip().lower() or "keep"
    if setting not in SETTINGS:
        raise BackendError(f"MINIDL_HOST_MEMORY must be 'keep' or 'release', got {setting!r}")
    if setting == "release":
        return "released"
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version"):
        return "not glibc"
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    for option, value in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        if libc.mallopt(option, value) != 1:
            raise BackendError(f"glibc's mallopt refused option {option} = {value}")
    return "kept"
