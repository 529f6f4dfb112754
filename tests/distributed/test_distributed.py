"""Data-parallel training on 2 CPU ranks started by the mpiexec of the installed MPI runtime."""

import contextlib
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from minidl import backend
from minidl.distributed.nodeinfo import collectiveTimeout
from minidl.errors import DistributedError

pytest.importorskip("mpi4py", reason="the mpi extra (mpi4py, mpich) is not installed")

ROOT = pathlib.Path(__file__).resolve().parents[2]
MPIEXEC = shutil.which("mpiexec", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("mpiexec")
if MPIEXEC is None:
    pytest.skip("no mpiexec found: install the mpi extra", allow_module_level=True)

TIME_LIMIT = 60


def runJob(mode, ranks=2, backendName="numpy"):
    return runMpi(["-m", "tests.distributed.mpijob", mode], ranks, backendName)


def runMpi(arguments, ranks=2, backendName="numpy", cwd=ROOT, environment=None):
    environment = {**(os.environ if environment is None else environment), "PYTHONPATH": str(ROOT),
                   "MINIDL_BACKEND": backendName, "OMP_NUM_THREADS": "1"}
    return subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, *arguments],
                          cwd=cwd, env=environment, capture_output=True, text=True, timeout=TIME_LIMIT)


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


def test_the_trainer_shards_batches_like_one_process_with_the_whole_batch():
    difference, errorDifference = resultLine(runJob("trainer"), "trainer")
    assert float(difference) < 1e-5 and float(errorDifference) < 1e-5


def test_float16_training_over_mpi_matches_one_process_with_the_whole_batch():
    """MPI has no half type: float16 parameters were refused at setupOn's broadcast (``minidl train --dtype float16``
    under mpiexec failed before its first step); their gradients are averaged in float32."""
    same, sameScale, largeMean, difference = resultLine(runJob("half"), "half")
    assert same == sameScale == largeMean == "True" and float(difference) < 1e-3


def test_every_rank_keeps_the_same_running_statistics_and_validates_alike():
    """BatchNorm's running statistics, updated from each rank's own shard, would differ from rank to rank, and so
    would each rank's validation error, on which early stopping and the plateau schedule decide on every rank."""
    assert resultLine(runJob("buffers"), "buffers") == ["True"]


def test_the_command_trains_on_two_ranks_and_its_checkpoint_resumes_in_one_process(tmp_path):
    pytest.importorskip("sklearn", reason="the digits need scikit-learn (the datasets extra)")
    result = runMpi(["-m", "minidl", "train", "--epochs", "4", "--out", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    epochs = [line for line in result.stdout.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 4  # rank 0 alone prints
    assert "2 ranks (mpi)" in result.stdout
    assert float(epochs[-1].split("val accuracy ")[1].split("%")[0]) > 90

    single = subprocess.run([sys.executable, "-m", "minidl", "train", "--epochs", "5", "--resume", "--out",
                             str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=TIME_LIMIT,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "MINIDL_BACKEND": "numpy"})
    assert single.returncode == 0, single.stderr
    assert "resumed from" in single.stdout and "after epoch 4" in single.stdout
    assert "epoch   5/5" in single.stdout


def test_verify_names_the_number_of_ranks_and_bisect_refuses_a_run_on_several(tmp_path):
    """The manifest held the flags only, so a run on 2 ranks and one in 1 process with the same flags (another
    batch per step) had "the same" manifest by ``minidl verify``; ``--bisect`` replayed the first in one process."""
    pytest.importorskip("sklearn", reason="the digits need scikit-learn (the datasets extra)")
    flags = ["-m", "minidl", "train", "--epochs", "1", "--batch-size", "16", "--out"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "MINIDL_BACKEND": "numpy", "MINIDL_MAX_SAMPLES": "128"}
    ranks = runMpi([*flags, str(tmp_path / "ranks")], environment=environment)
    assert ranks.returncode == 0, ranks.stderr
    single = subprocess.run([sys.executable, *flags, str(tmp_path / "single")], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=TIME_LIMIT)
    assert single.returncode == 0, single.stderr

    def verify(*options):
        return subprocess.run([sys.executable, "-m", "minidl", "verify", *options, str(tmp_path / "ranks"),
                               str(tmp_path / "single")], cwd=ROOT, env=environment, capture_output=True, text=True,
                              timeout=TIME_LIMIT)

    compared = verify()
    assert compared.returncode == 1 and "manifest: settings.ranks: 2 vs 1" in compared.stdout, compared.stdout
    bisected = verify("--bisect")
    assert bisected.returncode == 2 and "a run on 2 MPI ranks is not replayed" in bisected.stderr, bisected.stderr


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


def test_every_collective_gives_the_hand_computed_result_on_three_ranks():
    assert resultLine(runJob("collectives", ranks=3), "collectives") == ["True"] * 4


def test_a_stopped_rank_ends_the_job_within_the_deadline_naming_it():
    """Of 3 ranks, rank 2 stops itself (SIGSTOP); ranks 0 and 1 wait 2 s in the gradient all-reduce, name rank 2
    (and not each other) and abort the job."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "MINIDL_BACKEND": "numpy", "OMP_NUM_THREADS": "1",
                   "MINIDL_COLLECTIVE_TIMEOUT": "2"}
    start = time.monotonic()
    job = subprocess.Popen([MPIEXEC, "-n", "3", sys.executable, "-m", "tests.distributed.mpijob", "stopped"],
                           cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        out, err = job.communicate(timeout=TIME_LIMIT)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)  # whatever is left of the job, the stopped rank included
    assert "rank 2 stops" in out, err
    assert job.returncode != 0
    assert re.search(r"minidl: rank [01] of 3 waited 2 s in collective #\d+ \(sum\): rank 2 did not answer", err), err
    assert not re.search(r"ranks [\d, ]+ did not answer", err), "a waiting rank was named"
    assert time.monotonic() - start < 30, "the job outlived its deadline by far"


def test_a_user_error_under_mpi_is_printed_once(tmp_path):
    result = runMpi(["-m", "minidl", "train", "--epochs", "1", "--out", str(tmp_path), "--resume"])
    assert result.returncode != 0
    assert result.stderr.count("minidl: error:") == 1, result.stderr
    assert f"minidl: error: no checkpoint file at {tmp_path}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_user_error_in_the_data_under_mpi_is_printed_once(tmp_path):
    """The fit loop's checks of the data (here: too few samples for a batch of 1000 on each of 2 ranks) ran on every
    rank inside the block that aborts the job: each rank printed the error with its traceback."""
    pytest.importorskip("sklearn", reason="the digits need scikit-learn (the datasets extra)")
    result = runMpi(["-m", "minidl", "train", "--epochs", "1", "--batch-size", "1000", "--out", str(tmp_path)])
    assert result.returncode != 0
    assert result.stderr.count("minidl: error:") == 1, result.stderr
    assert "samples cannot fill one batch of 1000 on each of 2 ranks" in result.stderr
    assert "Traceback" not in result.stderr and "aborting the job" not in result.stderr
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("setting, message", [("0", "positive finite"), ("inf", "positive finite"),
                                              ("soon", "must be a number of seconds, got 'soon'")])
def test_the_collective_timeout_must_be_a_positive_number(monkeypatch, setting, message):
    monkeypatch.setenv("MINIDL_COLLECTIVE_TIMEOUT", setting)
    with pytest.raises(DistributedError, match=message):
        collectiveTimeout()
    monkeypatch.delenv("MINIDL_COLLECTIVE_TIMEOUT")
    assert collectiveTimeout() == 600.0 and collectiveTimeout(2.5) == 2.5
