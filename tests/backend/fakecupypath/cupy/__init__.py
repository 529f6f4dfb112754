"""Makes 'import cupy' load the stand-in of tests/backend/fakecupy.py (see test_detection.py)."""

from tests.backend.fakecupy import *  # noqa: F403
