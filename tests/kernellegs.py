"""The two legs of a kernel's property test: the host leg (its NumPy reference and its host-compiled CUDA text) and
the device leg (the CUDA text launched by CuPy on a GPU, or by the simulated device). A test that calls checkKernel
or checkReduction runs once per leg, so the report counts the device leg, run or skipped with the reason where no
device is present.
"""

import pytest

from minidl import backend
from minidl.testing.kernels import onlyPaths

DEVICE_LEG_ABSENT = "the device leg runs on a GPU or the simulated device (MINIDL_BACKEND=simulated, CI's second run)"


def parametrizeLegs(metafunc):
    """pytest_generate_tests: a test whose code calls checkKernel or checkReduction gets the ``kernelLeg``
    parameter."""
    if {"checkKernel", "checkReduction"} & set(metafunc.function.__code__.co_names):
        metafunc.fixturenames.append("kernelLeg")
        metafunc.parametrize("kernelLeg", ["host", "device"])


@pytest.fixture(autouse=True)
def kernelLegPaths(request):
    """checkKernel kept to the paths of the test's leg (every path for a test without legs)."""
    callspec = getattr(request.node, "callspec", None)
    leg = callspec.params.get("kernelLeg") if callspec is not None else None
    if leg is None:
        yield
        return
    if leg == "device" and not backend.isGpu:
        pytest.skip(DEVICE_LEG_ABSENT)
    with onlyPaths(["host"] if leg == "host" else ["cupy"]):
        yield


def devicePath():
    """The "cupy" path as a parameter of a test, skipped with the reason where no device is present."""
    return pytest.param("cupy", marks=pytest.mark.skipif(not backend.isGpu, reason=DEVICE_LEG_ABSENT))
