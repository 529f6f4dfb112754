"""A stand-in for the NVIDIA driver's library, for subprocesses that load the CuPy stand-in of fakecupy.py:
minidl imports CuPy only where libcuda.so.1 loads (minidl/backend/device.py), and on a machine without a driver
it would never reach the failure a test stages. Any shared library that loads will do: a copy of the libm this
process has loaded, named libcuda.so.1, in a folder put on LD_LIBRARY_PATH."""

import os
import shutil
import sys

import pytest


def withDriver(environment, folder):
    """``environment`` (a dict for subprocess) with a stand-in libcuda.so.1 written into ``folder`` and found
    first on LD_LIBRARY_PATH."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the driver's stand-in is a Linux shared library")
    with open("/proc/self/maps") as maps:
        libm = next(line.split()[-1] for line in maps if "/libm.so" in line)
    os.makedirs(folder, exist_ok=True)
    shutil.copy(libm, os.path.join(folder, "libcuda.so.1"))
    paths = [str(folder), environment.get("LD_LIBRARY_PATH", "")]
    return {**environment, "LD_LIBRARY_PATH": os.pathsep.join(filter(None, paths))}
