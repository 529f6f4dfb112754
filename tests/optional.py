"""The optional packages some tests need beside minidl's own: CuPy (its code generation and parser, and NVRTC
to compile what it generates; no GPU is touched) and PyTorch (an independent oracle; minidl never imports it).

On a developer machine without one, its tests skip with the reason and the extra that brings it. ``.ci/run``
installs both extras and sets MINIDL_REQUIRE_CUPY=1 and MINIDL_REQUIRE_TORCH=1, under which a package that does
not import fails those tests instead, so CI's report can never hide them among the skips.
"""

import os

import pytest


def _missing(message, variable, extra):
    message += f": pip install -e '.[{extra}]' brings it"
    if os.environ.get(variable) == "1":
        pytest.fail(f"{message} ({variable}=1)", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def importCupy(needNvrtc=False):
    """The cupy module, or a skip (a failure under MINIDL_REQUIRE_CUPY=1) when it does not import, or when
    ``needNvrtc`` and CuPy cannot load NVRTC."""
    try:
        import cupy
    except ImportError as error:
        _missing(f"CuPy does not import here ({error})", "MINIDL_REQUIRE_CUPY", "cupy-compile")
    if needNvrtc:
        from cupy.cuda import compiler

        try:
            compiler._get_nvrtc_version()
        except Exception as error:  # cuda-pathfinder's DynamicLibNotFoundError
            _missing(f"CuPy cannot load NVRTC here ({type(error).__name__}: {error})", "MINIDL_REQUIRE_CUPY",
                     "cupy-compile")
    return cupy


def importTorch():
    """The torch module (PyTorch as a test oracle), or a skip (a failure under MINIDL_REQUIRE_TORCH=1) when it
    does not import."""
    try:
        import torch
    except ImportError as error:
        _missing(f"PyTorch, this test's oracle, does not import here ({error})", "MINIDL_REQUIRE_TORCH",
                 "torch-oracle")
    return torch


def importSafetensorsTorch():
    """safetensors.torch (safetensors' reader and writer of torch tensors), under the same rule as importTorch."""
    importTorch()
    import safetensors.torch

    return safetensors.torch
