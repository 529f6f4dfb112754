"""Hypothesis profiles: "ci" keeps the suite within a few minutes on 2 cores, "dev" searches harder.

HYPOTHESIS_PROFILE picks one; otherwise "ci" when the CI variable is set, else "dev".
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# Kernel signatures (tests/kernelsignatures.py): every package kernel call is checked against the recorded
# table, or recorded when MINIDL_RECORD_KERNEL_SIGNATURES=1 (the table is rewritten when such a run passes).
from tests import kernelsignatures  # noqa: E402

_recorder = kernelsignatures.install()


def pytest_collection_finish(session):
    _recorder.wholeSuite = kernelsignatures.isWholeSuite(session.config)


def pytest_sessionfinish(session, exitstatus):
    if kernelsignatures.recording() and exitstatus == 0:
        kernelsignatures.writeTable(_recorder.seen)


# Every property test of a kernel (a test that calls checkKernel) runs twice: its host leg and its device leg.
from tests.kernellegs import kernelLegPaths, parametrizeLegs  # noqa: E402, F401 - a fixture, and the hook below


def pytest_generate_tests(metafunc):
    parametrizeLegs(metafunc)
