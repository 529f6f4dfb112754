"""Backend detection without a GPU: CuPy's device side stubbed to fail in each way a real machine fails
(tests/backend/fakecupy.py), behind a stand-in for the NVIDIA driver's library (tests/backend/fakedriver.py);
the probe, the choice, the one-line report, MINIDL_BACKEND=cupy and the command line's --device gpu are
minidl's real code. Without a driver (or with no device) minidl runs on NumPy without a word and without
importing CuPy."""

import ctypes
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minidl import BackendError
from minidl.backend import device
from tests.backend.fakecupy import fakeCupy
from tests.backend.fakedriver import withDriver

ROOT = Path(__file__).resolve().parents[2]
INSTALL = "pip install 'cupy-cuda12x[ctk]'"

REASONS = {  # failure -> what the reason must name
    "driver": ["NVIDIA driver is older than CuPy's CUDA runtime", "cudaErrorInsufficientDriver", "update the driver"],
    "nodevice": ["no CUDA device answers", "the NVIDIA driver sees none"],
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


@pytest.fixture
def driverFolder(tmp_path):
    """A folder for the stand-in of the NVIDIA driver's library (tests/backend/fakedriver.py)."""
    return tmp_path / "driver"


COLD_CACHE = "minidl: compiling CPU kernels"  # said once on a cold kernel cache, whatever the device


def run(failure, *command, env=None, driver=None):
    """Run ``command`` in a subprocess whose ``import cupy`` loads the stand-in failing as ``failure``; with
    ``driver`` (a folder holding a stand-in libcuda.so.1) on LD_LIBRARY_PATH, as a machine with a driver. Its
    stderr comes back without the cold kernel cache's notice (a test run alone on a fresh machine compiles the
    kernels in the subprocess)."""
    environment = {**os.environ, "MINIDL_BACKEND": "", "FAKE_CUPY_FAILURE": failure, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests" / "backend" / "fakecupypath"), str(ROOT)])
    if driver is not None:
        environment = withDriver(environment, driver)
    result = subprocess.run([sys.executable, *command], cwd=ROOT, env=environment, capture_output=True, text=True,
                            timeout=120)
    result.stderr = "".join(line for line in result.stderr.splitlines(keepends=True) if not line.startswith(COLD_CACHE))
    return result


def test_a_machine_missing_cublas_runs_on_the_cpu_and_says_so_once(tmp_path, driverFolder):
    log = tmp_path / "probes"
    result = run("cublas", "-c", "from minidl import backend; backend.gpuProblem(); print(backend.name)",
                 env={"FAKE_CUPY_LOG": str(log)}, driver=driverFolder)
    assert result.returncode == 0 and result.stdout == "numpy\n", result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("minidl: running on the CPU: CuPy cannot multiply matrices")
    assert INSTALL in lines[0]
    assert log.read_text() == "getDeviceCount\n", "the probe must run once per process"


def test_gpu_problem_probes_once_when_numpy_was_forced(tmp_path, driverFolder):
    log = tmp_path / "probes"
    code = "from minidl import backend; print(backend.gpuProblem()); print(backend.gpuProblem())"
    result = run("nvrtc", "-c", code, env={"FAKE_CUPY_LOG": str(log), "MINIDL_BACKEND": "numpy"}, driver=driverFolder)
    assert result.returncode == 0 and result.stderr == ""
    first, second = result.stdout.splitlines()
    assert first == second and "NVRTC or the CUDA headers are missing" in first
    assert log.read_text() == "getDeviceCount\n"


def test_forcing_cupy_on_such_a_machine_is_a_backend_error(driverFolder):
    result = run("nvrtc", "-c", "import minidl.backend", env={"MINIDL_BACKEND": "cupy"}, driver=driverFolder)
    assert result.returncode != 0
    assert "BackendError: the GPU was asked for (MINIDL_BACKEND=cupy or --device gpu), but CuPy cannot compile" \
        in result.stderr


@pytest.mark.parametrize("failure", ["driver", "nodevice", "cublas"])
def test_device_gpu_on_the_command_line_fails_in_one_line(failure, tmp_path, driverFolder):
    result = run(failure, "-m", "minidl", "train", "--epochs", "1", "--out", str(tmp_path), "--device", "gpu",
                 driver=driverFolder)
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("minidl: error: the GPU was asked for (MINIDL_BACKEND=cupy or --device gpu), but ")
    assert REASONS[failure][0] in lines[0]


def test_device_cpu_on_the_command_line_skips_the_probe(tmp_path, driverFolder):
    log = tmp_path / "probes"
    result = run("cublas", "-c", "from minidl.__main__ import run; import sys; "
                 "sys.argv[1:] = ['train', '--device=cpu', '--help']; run()", env={"FAKE_CUPY_LOG": str(log)},
                 driver=driverFolder)
    assert result.returncode == 0 and result.stderr == "" and "--device" in result.stdout
    assert not log.exists()


@pytest.mark.parametrize("failure", ["nodevice", "nodevicecount"])
def test_a_driver_without_a_device_is_not_reported(failure):
    fake = fakeCupy("nodevice")
    if failure == "nodevice":  # what CuPy raises where the driver loads but sees no GPU
        def noDevice():
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        fake.cuda.runtime.getDeviceCount = noDevice
    assert device.probeCupy(fake) == device.NO_DEVICE
    stderr = io.StringIO()
    assert device.choose("", lambda: (None, device.NO_DEVICE), stderr=stderr) == (None, device.NO_DEVICE)
    assert stderr.getvalue() == ""


def test_without_a_driver_cupy_is_not_even_imported_and_nothing_is_said(tmp_path):
    code = ("import sys; from minidl.backend import device; "
            "print(device._loadCupy('libminidl-absent-driver.so.1')[1]); print('cupy' in sys.modules)")
    result = run("", "-c", code, env={"MINIDL_BACKEND": "numpy"})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.splitlines() == [device.NO_DRIVER, "False"]
    with pytest.raises(BackendError, match="the GPU was asked for .*, but no CUDA device answers .no NVIDIA driver"):
        device.choose("cupy", lambda: (None, device.NO_DRIVER))


def test_a_machine_with_cupy_and_no_driver_runs_on_the_cpu_without_a_word(tmp_path):
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        pass
    else:
        pytest.skip("this machine has an NVIDIA driver")
    log = tmp_path / "probes"
    result = run("driver", "-m", "minidl", "train", "--epochs", "1", "--out", str(tmp_path / "run"),
                 env={"FAKE_CUPY_LOG": str(log)})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert ", numpy" in result.stdout.splitlines()[0]
    assert not log.exists(), "no driver: CuPy is never asked for a device"
