"""Backend detection without a GPU: CuPy's device side stubbed to fail in each way a real machine fails
(tests/backend/fakecupy.py); the probe, the choice, the one-line report, MINIDL_BACKEND=cupy and the command
line's --device gpu are minidl's real code."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minidl import BackendError
from minidl.backend import device
from tests.backend.fakecupy import fakeCupy

ROOT = Path(__file__).resolve().parents[2]
INSTALL = "pip install 'cupy-cuda12x[ctk]'"

REASONS = {  # failure -> what the reason must name
    "driver": ["no CUDA device answers", "cudaErrorInsufficientDriver", "driver"],
    "nodevice": ["no CUDA device answers", "device count is 0"],
    "nvrtc": ["cannot compile a kernel", "libnvrtc", "NVRTC or the CUDA headers are missing", INSTALL],
    "headers": ["cannot compile a kernel", "cuda_fp16.h", INSTALL],
    "cublas": ["cannot multiply matrices", "libcublas.so.12", "cuBLAS is missing", INSTALL],
    "wrongvalues": ["gave [7.0, 7.0, 7.0, 7.0] instead of [1.0, 1.0, 1.0, 1.0]"],
}


@pytest.mark.parametrize("failure", sorted(REASONS))
def test_the_probe_names_the_missing_piece_and_its_install_command(failure):
    reason = device.probeCupy(fakeCupy(failure))
    for part in REASONS[failure]:
        assert part in reason
    assert "\n" not in reason


def test_the_probe_passes_when_every_step_works():
    assert device.probeCupy(fakeCupy("")) is None


def test_automatic_choice_falls_back_to_the_cpu_with_one_line():
    stderr = io.StringIO()
    cupy, reason = device.choose("", lambda: (None, "cuBLAS is missing"), stderr=stderr)
    assert cupy is None and reason == "cuBLAS is missing"
    assert stderr.getvalue() == "minidl: running on the CPU: cuBLAS is missing\n"


def test_a_cpu_only_install_is_not_reported():
    stderr = io.StringIO()
    assert device.choose("", lambda: (None, device.NOT_INSTALLED), stderr=stderr) == (None, device.NOT_INSTALLED)
    assert stderr.getvalue() == ""


def test_forcing_cupy_is_a_backend_error_with_the_reason_and_forcing_numpy_skips_the_probe():
    with pytest.raises(BackendError, match="asked for .*MINIDL_BACKEND=cupy.*, but cuBLAS is missing"):
        device.choose("cupy", lambda: (None, "cuBLAS is missing"))
    assert device.choose(" NumPy ", lambda: pytest.fail("probed")) == (None, None)
    working = object()
    assert device.choose("cupy", lambda: (working, None)) == (working, None)
    with pytest.raises(BackendError, match="MINIDL_BACKEND must be 'numpy', 'cupy' or 'simulated', got 'tpu'"):
        device.choose("tpu")


def run(failure, *command, env=None):
    """Run ``command`` in a subprocess whose ``import cupy`` loads the stand-in failing as ``failure``."""
    environment = {**os.environ, "MINIDL_BACKEND": "", "FAKE_CUPY_FAILURE": failure, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests" / "backend" / "fakecupypath"), str(ROOT)])
    return subprocess.run([sys.executable, *command], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=120)


def test_a_machine_missing_cublas_runs_on_the_cpu_and_says_so_once(tmp_path):
    log = tmp_path / "probes"
    result = run("cublas", "-c", "from minidl import backend; backend.gpuProblem(); print(backend.name)",
                 env={"FAKE_CUPY_LOG": str(log)})
    assert result.returncode == 0 and result.stdout == "numpy\n", result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("minidl: running on the CPU: CuPy cannot multiply matrices")
    assert INSTALL in lines[0]
    assert log.read_text() == "getDeviceCount\n", "the probe must run once per process"


def test_gpu_problem_probes_once_when_numpy_was_forced(tmp_path):
    log = tmp_path / "probes"
    code = "from minidl import backend; print(backend.gpuProblem()); print(backend.gpuProblem())"
    result = run("nvrtc", "-c", code, env={"FAKE_CUPY_LOG": str(log), "MINIDL_BACKEND": "numpy"})
    assert result.returncode == 0 and result.stderr == ""
    first, second = result.stdout.splitlines()
    assert first == second and "NVRTC or the CUDA headers are missing" in first
    assert log.read_text() == "getDeviceCount\n"


def test_forcing_cupy_on_such_a_machine_is_a_backend_error():
    result = run("nvrtc", "-c", "import minidl.backend", env={"MINIDL_BACKEND": "cupy"})
    assert result.returncode != 0
    assert "BackendError: the GPU was asked for (MINIDL_BACKEND=cupy or --device gpu), but CuPy cannot compile" \
        in result.stderr


@pytest.mark.parametrize("failure", ["driver", "cublas"])
def test_device_gpu_on_the_command_line_fails_in_one_line(failure, tmp_path):
    result = run(failure, "-m", "minidl", "train", "--epochs", "1", "--out", str(tmp_path), "--device", "gpu")
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("minidl: error: the GPU was asked for (MINIDL_BACKEND=cupy or --device gpu), but ")
    assert REASONS[failure][0] in lines[0]


def test_device_cpu_on_the_command_line_skips_the_probe(tmp_path):
    log = tmp_path / "probes"
    result = run("cublas", "-c", "from minidl.__main__ import run; import sys; "
                 "sys.argv[1:] = ['train', '--device=cpu', '--help']; run()", env={"FAKE_CUPY_LOG": str(log)})
    assert result.returncode == 0 and result.stderr == "" and "--device" in result.stdout
    assert not log.exists()
