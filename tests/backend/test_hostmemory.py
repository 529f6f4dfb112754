"""minidl keeps freed host memory for the next arrays (minidl.backend.hostmemory): a block that makes and frees the
same large arrays again faults their pages in once, not at every pass, as glibc's defaults do; MINIDL_HOST_MEMORY=
release leaves malloc as glibc sets it; a wrong setting is refused by name."""

import ctypes
import os
import subprocess
import sys

import pytest

from minidl.backend import hostmemory
from minidl.errors import BackendError

glibc = pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"), reason="glibc's malloc only")

# Four arrays of 8 MiB made and freed four times, as a forward and backward pass would: the page faults of the last
# pass. glibc's defaults hand the heap's free top back once it exceeds twice the largest array freed, so each pass
# faults its 32 MiB in again.
LAST_PASS_FAULTS = """
import resource
import numpy
import minidl.backend

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

for _ in range(4):
    before = faults()
    arrays = [numpy.ones(1 << 21, numpy.float32) for _ in range(4)]
    last = faults() - before
    del arrays
print(last)
"""


def lastPassFaults(setting):
    environment = {**os.environ, "MINIDL_BACKEND": "numpy", "MINIDL_HOST_MEMORY": setting}
    run = subprocess.run([sys.executable, "-c", LAST_PASS_FAULTS], capture_output=True, text=True, env=environment,
                         timeout=120, check=True)
    return int(run.stdout.split()[-1])


@glibc
def test_arrays_made_again_reuse_the_memory_freed_without_faulting_it_in():
    released, kept = lastPassFaults("release"), lastPassFaults("keep")
    assert released >= 16  # glibc's defaults: every page of the pass again (8,192 of 4 KiB, or 16 huge pages)
    assert kept <= released // 8, (kept, released)


def test_a_wrong_setting_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("MINIDL_HOST_MEMORY", "forever")
    with pytest.raises(BackendError, match="MINIDL_HOST_MEMORY must be 'keep' or 'release', got 'forever'"):
        hostmemory.keepFreedMemory.__wrapped__()


def test_release_leaves_malloc_alone(monkeypatch):
    monkeypatch.setenv("MINIDL_HOST_MEMORY", " Release ")
    assert hostmemory.keepFreedMemory.__wrapped__() == "released"


@glibc
def test_importing_minidl_set_this_process_to_keep_freed_memory_unless_told_otherwise():
    from minidl.backend import device
    if device.cupy is not None and not device.simulated:
        pytest.skip("a GPU's arrays live in device memory: minidl leaves the host's malloc as it is")
    assert hostmemory.keepFreedMemory.cache_info().currsize == 1  # called when the backend was chosen
    told = os.environ.get("MINIDL_HOST_MEMORY", "").strip().lower()
    assert hostmemory.keepFreedMemory() == ("released" if told == "release" else "kept")
