"""The same bits whatever the number of threads: a script that prints a digest of what minidl's own C++ computed, run
in a process of its own on one thread and on two (OMP_NUM_THREADS, which sizes minidl's pool)."""

import os
import subprocess
import sys


def assertSameBitsOnOneThreadAsOnTwo(script):
    """Run ``script`` (Python source printing one SHA-256 hex digest) on one thread and on two; the digests agree."""
    digests = [subprocess.run([sys.executable, "-c", script], env={**os.environ, "OMP_NUM_THREADS": threads},
                              capture_output=True, text=True, check=True).stdout for threads in ("1", "2")]
    assert len(digests[0].strip()) == 64 and digests[0] == digests[1]
