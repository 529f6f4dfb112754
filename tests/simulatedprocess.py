"""What a module of the test suite prints as JSON when it runs on the simulated device in a process of its own:
the counts (launches, syncs, copies) that only that device makes, taken from a suite run on NumPy."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def simulatedCounts(module, timeout):
    """``python -m module`` with MINIDL_BACKEND=simulated, from the repository's root; its stdout parsed as JSON."""
    result = subprocess.run([sys.executable, "-m", module], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "MINIDL_BACKEND": "simulated"}, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)
