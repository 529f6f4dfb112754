"""One run at a time in an --out folder: a second is refused at once naming the first's pid, a dead run's lock
is taken over (and said), and a new run never replaces another run's files without --overwrite."""

import fcntl
import os
import subprocess
import sys
import time

import pytest

from minidl.cli import main
from minidl.cli.outlock import LOCK_NAME
from tests.cli.test_cli_protection import command


def test_a_second_run_into_a_locked_folder_is_refused_naming_the_holder(tmp_path, capsys):
    """A real first run in another process: the second is refused while it trains, and neither ends broken."""
    environment = {**os.environ, "PYTHONPATH": os.getcwd()}
    first = subprocess.Popen([sys.executable, "-m", "minidl", "train", "--epochs", "400", "--out", str(tmp_path)],
                             env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / LOCK_NAME).exists() or not (tmp_path / LOCK_NAME).read_text().strip():
            assert first.poll() is None and time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.1)
        for flags in ([], ["--overwrite"], ["--resume"]):
            status, out, err = command(capsys, "--epochs", 1, "--out", tmp_path, *flags)
            assert status == 1 and "epoch" not in out, (flags, out, err)
            assert f"is in use by another minidl run (pid {first.pid})" in err, (flags, err)
    finally:
        first.kill()
        first.wait()


def test_a_lock_held_in_this_process_refuses_the_run_before_anything_is_written(tmp_path, capsys):
    with open(tmp_path / LOCK_NAME, "w") as holder:
        holder.write("4242\n")
        holder.flush()
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        status, _, err = command(capsys, "--epochs", 1, "--out", tmp_path)
    assert status == 1 and "(pid 4242)" in err
    assert os.listdir(tmp_path) == [LOCK_NAME]


def test_a_stale_lock_of_a_dead_run_is_taken_over_and_said(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(f"{dead.pid}\n")
    status, out, err = command(capsys, "--epochs", 1, "--out", tmp_path)
    assert status == 0, err
    assert f"took over the lock left by pid {dead.pid}, which ended without releasing it" in out
    assert not (tmp_path / LOCK_NAME).exists(), "a run that ends gives its lock back"


@pytest.mark.parametrize("name", ["best.safetensors", "log.csv", "report.txt", "report.json", "tensorboard"])
def test_a_new_run_never_replaces_another_runs_files(tmp_path, capsys, name):
    (tmp_path / name).write_text("the earlier run's")
    status, out, err = command(capsys, "--epochs", 1, "--out", tmp_path)
    assert status == 1 and "epoch" not in out
    assert f"holds files of another run ({name})" in err and "--overwrite" in err
    assert (tmp_path / name).read_text() == "the earlier run's"
    if name != "tensorboard":
        assert main(["train", "--epochs", "1", "--out", str(tmp_path), "--overwrite"]) == 0
        assert (tmp_path / name).read_bytes() != b"the earlier run's"


def test_a_run_refused_by_the_fit_loops_checks_leaves_no_trace(tmp_path, capsys, monkeypatch):
    """--tensorboard without tensorboardX is refused by the fit loop's checks, after the folder of kept
    checkpoints was made: the empty OUT/checkpoints stayed, and the next run into OUT was refused as holding
    another run's files."""
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if minidl[tensorboard] were not installed
    status, out, err = command(capsys, "--epochs", 1, "--tensorboard", "--out", tmp_path / "run")
    assert status == 1 and "needs tensorboardX" in err and "epoch" not in out
    assert not (tmp_path / "run").exists()
    (tmp_path / "run").mkdir()
    status, out, err = command(capsys, "--epochs", 1, "--tensorboard", "--out", tmp_path / "run")
    assert status == 1 and os.listdir(tmp_path / "run") == [], "a folder that was there stays, as it was"
    monkeypatch.delitem(sys.modules, "tensorboardX")
    status, out, err = command(capsys, "--epochs", 1, "--out", tmp_path / "run")
    assert status == 0, err
