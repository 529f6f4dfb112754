"""CuPy for the tests that drive its code generation and parser without a GPU (no device is touched).

On a developer machine without CuPy they skip with the reason; ``.ci/run`` sets MINIDL_REQUIRE_CUPY=1, under
which a CuPy that does not import fails them instead (CI installs the test extra, which pins CuPy and NVRTC).
"""

import os

import pytest


def _missing(message):
    message += ": pip install -e '.[test]' brings the pinned CuPy and NVRTC"
    if os.environ.get("MINIDL_REQUIRE_CUPY") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


def importCupy(needNvrtc=False):
    """The cupy module, or a skip (a failure under MINIDL_REQUIRE_CUPY=1) when it does not import, or when
    ``needNvrtc`` and CuPy cannot load NVRTC."""
    try:
        import cupy
    except ImportError as error:
        _missing(f"CuPy does not import here ({error})")
    if needNvrtc:
        from cupy.cuda import compiler

        try:
            compiler._get_nvrtc_version()
        except Exception as error:  # cuda-pathfinder's DynamicLibNotFoundError
            _missing(f"CuPy cannot load NVRTC here ({type(error).__name__}: {error})")
    return cupy
