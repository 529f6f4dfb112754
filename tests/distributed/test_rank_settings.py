"""Ranks started with other settings are refused in the first collective, naming the difference, before any
training step or file (mpiexec of the installed MPI runtime, one program per rank)."""

import os
import subprocess
import sys

import pytest

from tests.distributed.test_distributed import MPIEXEC, ROOT, TIME_LIMIT

pytest.importorskip("sklearn", reason="the digits need scikit-learn (the datasets extra)")


@pytest.mark.parametrize("flag, ours, theirs", [("--seed", "0", "1"), ("--batch-size", "128", "64"),
                                                ("--model", "mlp", "cnn"), ("--dtype", "float32", "float64"),
                                                ("--schedule", "cosine", "step")])
def test_a_rank_with_other_settings_is_refused_naming_them(tmp_path, flag, ours, theirs):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "MINIDL_BACKEND": "numpy", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "minidl", "train", "--epochs", "2", "--out", str(tmp_path)]
    result = subprocess.run([MPIEXEC, "-n", "1", *command, flag, ours, ":", "-n", "1", *command, flag, theirs],
                            cwd=ROOT, env=environment, capture_output=True, text=True, timeout=TIME_LIMIT)
    assert result.returncode != 0
    assert f"rank 1 of 2 runs with {flag} {theirs}, rank 0 with {flag} {ours}: every rank must train with the same " \
           "settings" in result.stderr, result.stderr
    assert result.stderr.count("every rank must train") == 1  # printed once
    assert "epoch" not in result.stdout and not os.path.exists(tmp_path / "checkpoint.safetensors")
