"""Data-parallel training on 2 CPU ranks started by the mpiexec of the installed MPI runtime."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from minidl import backend

pytest.importorskip("mpi4py", reason="the mpi extra (mpi4py, mpich) is not installed")

ROOT = pathlib.Path(__file__).resolve().parents[2]
MPIEXEC = shutil.which("mpiexec", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("mpiexec")
if MPIEXEC is None:
    pytest.skip("no mpiexec found: install the mpi extra", allow_module_level=True)

TIME_LIMIT = 60


def runJob(mode, ranks=2, backendName="numpy"):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "MINIDL_BACKEND": backendName}
    return subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, "-m", "tests.distributed.mpijob", mode],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=TIME_LIMIT)


def resultLine(result, word):
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines() if line.startswith(word)]
    assert len(lines) == 1, result.stdout  # only rank 0 prints
    return lines[0][1:]


def test_parameters_are_bit_identical_on_all_ranks():
    assert resultLine(runJob("identical"), "identical") == ["True", "2"]


def test_two_ranks_with_batch_b_equal_one_process_with_batch_2b():
    (difference,) = resultLine(runJob("equivalent"), "equivalent")
    assert float(difference) < 1e-5


def test_a_failing_rank_ends_the_job_with_its_error():
    result = runJob("failure")  # subprocess.run raises TimeoutExpired if the job hangs past TIME_LIMIT
    assert result.returncode != 0
    assert "RuntimeError: rank 1 fails on purpose" in result.stderr
    assert "rank 1 of 2 failed; aborting the job" in result.stderr


def gpuCount():
    return backend.xp.cuda.runtime.getDeviceCount() if backend.isGpu else 0


@pytest.mark.skipif(gpuCount() < 2, reason="NCCL needs one GPU per rank: fewer than 2 CUDA devices here")
def test_nccl_transport_on_gpus():
    from minidl.backend.nccl import ncclAvailable

    if not ncclAvailable():
        pytest.skip("CuPy's NCCL bindings are not installed")
    assert resultLine(runJob("identical", backendName="cupy"), "identical") == ["True", "2"]
