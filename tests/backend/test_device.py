"""Device selection, transfers and random state."""

import os
import subprocess
import sys

import numpy
import pytest

from minidl import backend
from minidl.backend import gpuarray, toHost


def runWith(env, code):
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60)


def test_forcing_numpy_uses_numpy():
    result = runWith({"MINIDL_BACKEND": "numpy"}, "from minidl import backend; print(backend.name, backend.isGpu)")
    assert result.stdout.split() == ["numpy", "False"], result.stderr


def test_an_unknown_backend_is_a_clear_error():
    result = runWith({"MINIDL_BACKEND": "tpu"}, "import minidl.backend")
    expected = "MINIDL_BACKEND must be 'numpy', 'cupy' or 'simulated', got 'tpu'"
    assert result.returncode != 0 and expected in result.stderr


@pytest.mark.skipif(backend.name == "cupy", reason="a CUDA device answers here, so forcing cupy succeeds")
def test_forcing_cupy_without_a_device_is_a_clear_error():
    result = runWith({"MINIDL_BACKEND": "cupy"}, "import minidl.backend")
    assert result.returncode != 0
    assert "BackendError: the GPU was asked for (MINIDL_BACKEND=cupy or --device gpu), but" in result.stderr
    assert "CuPy is not installed" in result.stderr or "no CUDA device answers" in result.stderr


def test_to_gpu_copies_and_to_host_returns_numpy():
    host = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
    device = gpuarray.to_gpu(host)
    host[0, 0] = 100
    assert isinstance(device, backend.xp.ndarray)
    result = toHost(device)
    assert isinstance(result, numpy.ndarray) and result[0, 0] == 0 and result.shape == (2, 3)


def test_empty_and_zeros():
    assert gpuarray.zeros((2, 2), numpy.float64).dtype == numpy.float64
    assert toHost(gpuarray.zeros((3,))).tolist() == [0, 0, 0]
    assert gpuarray.empty((4, 1)).shape == (4, 1)
    backend.synchronize()


def test_seed_makes_draws_reproducible():
    backend.seed(7)
    first = backend.generator().standard_normal(5)
    backend.seed(7)
    numpy.testing.assert_array_equal(first, backend.generator().standard_normal(5))
