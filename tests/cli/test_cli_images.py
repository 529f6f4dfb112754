"""``minidl train --data folder:PATH`` (tar:, zip:): the same parameters with 0 and 2 workers and from every
source, an exact resume mid-epoch, Ctrl-C without orphans, and the flags' checks."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest

pytest.importorskip("PIL")

from minidl.cli import main  # noqa: E402
from minidl.tensorfile import readTensors  # noqa: E402
from minidl.train import PeriodicCheckpoint  # noqa: E402
from minidl.train.checkpoint import CHECKPOINT_FORMAT  # noqa: E402
from tests.datasets.imagetrees import writeTar, writeTree, writeZip  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = ("--model", "cnn", "--image-size", 12, "--batch-size", 4, "--augment", "--lr", 0.05, "--val-fraction",
           0.25)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return writeTree(tmp_path_factory.mktemp("images") / "tree")


def train(capsys, *args):
    status = main(["train", *map(str, OPTIONS), *map(str, args)])
    out = capsys.readouterr()
    assert status == 0, out.err
    return out.out


def checkpoint(folder):
    tensors, metadata = readTensors(folder / "checkpoint.safetensors", CHECKPOINT_FORMAT)
    return {name: array for name, array in tensors.items() if name.startswith("module.")}, \
        json.loads(metadata["extra"])


def assertSameModule(actual, expected):
    assert sorted(actual) == sorted(expected) and len(expected) > 4
    for name in expected:
        numpy.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def test_zero_and_two_workers_and_every_source_train_to_the_same_parameters(tree, tmp_path, capsys):
    out = train(capsys, "--data", f"folder:{tree}", "--epochs", 3, "--out", tmp_path / "inline")
    assert "cnn on folder:" in out and "(14 train, 4 validation, 3 classes, 3x12x12 images, 0 workers)" in out
    reference, extra = checkpoint(tmp_path / "inline")
    assert extra["classes"] == ["cat", "dog", "owl"] and extra["position"] is None
    for name, source in (("workers", f"folder:{tree}"), ("tar", f"tar:{writeTar(tree, tmp_path / 'a.tar')}"),
                         ("zip", f"zip:{writeZip(tree, tmp_path / 'a.zip')}")):
        train(capsys, "--data", source, "--epochs", 3, "--workers", 2, "--out", tmp_path / name)
        assertSameModule(checkpoint(tmp_path / name)[0], reference)
    report = json.loads((tmp_path / "inline" / "report.json").read_text())
    assert numpy.array(report["confusion"]).sum() == 4 and report["accuracy"] == 1.0  # the colours are learnt
    history = extra["history"]
    assert history[-1]["valError"] < history[0]["valError"] / 4


def test_a_run_stopped_mid_epoch_resumes_on_the_same_batches(tree, tmp_path, capsys, monkeypatch):
    train(capsys, "--data", f"folder:{tree}", "--epochs", 3, "--out", tmp_path / "whole")
    original = PeriodicCheckpoint.onStepEnd

    def stopInEpochTwo(self, fit):
        original(self, fit)
        if fit.epoch == 1 and fit.position == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(PeriodicCheckpoint, "onStepEnd", stopInEpochTwo)
    args = ["train", *map(str, OPTIONS), "--data", f"folder:{tree}", "--epochs", "3", "--workers", "2",
            "--checkpoint-steps", "1", "--out", str(tmp_path / "cut")]
    assert main(args) == 130
    assert "interrupted" in capsys.readouterr().err
    _, extra = checkpoint(tmp_path / "cut")
    assert extra["position"]["batch"] == 2 and len(extra["history"]) == 1
    monkeypatch.setattr(PeriodicCheckpoint, "onStepEnd", original)
    # the position is in batches: resumed with batches of 2 the epoch started at sample 4, repeating 4 of them
    before = (tmp_path / "cut" / "checkpoint.safetensors").read_bytes()
    assert main([*args[:-4], "--batch-size", "2", "--resume", "--out", str(tmp_path / "cut")]) == 1
    assert "written inside an epoch, after 2 batches of 4" in capsys.readouterr().err
    assert (tmp_path / "cut" / "checkpoint.safetensors").read_bytes() == before
    out = train(capsys, "--data", f"folder:{tree}", "--epochs", 3, "--resume", "--out", tmp_path / "cut")
    assert "resumed from" in out and "at batch 2" in out
    assertSameModule(checkpoint(tmp_path / "cut")[0], checkpoint(tmp_path / "whole")[0])


def statFields(pid):
    """The fields of /proc/PID/stat after the command's name (state first, then parent, process group...), or None
    once the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def groupMembers(group):
    """The pids of the processes still in process group ``group``."""
    members = []
    for entry in os.listdir("/proc"):
        fields = statFields(entry) if entry.isdigit() else None
        if fields is not None and int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry))
    return members


def interruptible():
    """In the command's process before it starts: SIGINT at its default, as a terminal's foreground command has it.
    A suite run as a background job (``cmd &`` in a script, ``nohup``) passes SIGINT on ignored, and Python then
    leaves it ignored: the command would rightly train on through the Ctrl-C (it did, 1,400 epochs in 60 s)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stuck(group):
    """Where each process of ``group`` waits, as /proc tells it (state, the kernel function it sleeps in, its
    command line), for a command that did not stop."""
    lines = []
    for pid in groupMembers(group):
        fields = statFields(pid)
        try:
            wchan = Path(f"/proc/{pid}/wchan").read_text()
            commandLine = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
        except OSError:
            continue
        if fields is not None:
            lines.append(f"pid {pid} state {fields[0]} waiting in {wchan or '-'}: {commandLine}")
    return "\n".join(lines)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads process groups from /proc")
def test_ctrl_c_stops_the_command_and_its_workers_without_orphans(tree, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "minidl", "train", *map(str, OPTIONS), "--data", f"folder:{tree}",
               "--epochs", "100000", "--workers", "2", "--checkpoint-steps", "1", "--device", "cpu", "--out", str(out)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    # its output to files, not pipes: a pipe nobody reads before the end fills (an epoch's line a few ms here)
    # and stops the command at a print
    outFile, errFile = tmp_path / "stdout", tmp_path / "stderr"
    with open(outFile, "w") as stdout, open(errFile, "w") as stderr:
        process = subprocess.Popen(command, env=environment, start_new_session=True, stdout=stdout, stderr=stderr,
                                   preexec_fn=interruptible)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.safetensors").exists() and process.poll() is None:
            assert time.monotonic() < deadline, "the command wrote no checkpoint in 120 s"
            time.sleep(0.2)
        assert process.poll() is None, errFile.read_text()
        assert len(groupMembers(process.pid)) >= 3  # the command and its two workers at least
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the command did not stop within 60 s of Ctrl-C: {stuck(process.pid)}\nstderr:\n"
                        f"{errFile.read_text()[-2000:]}\nstdout's end:\n{outFile.read_text()[-600:]}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    err = errFile.read_text()
    assert process.returncode == 130 and "minidl: interrupted" in err, err
    deadline = time.monotonic() + 10
    while groupMembers(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert groupMembers(process.pid) == []


@pytest.mark.parametrize("args, message", [
    (("--data", "digits", "--workers", "2"), "--workers goes with image files"),
    (("--data", "folder:{tree}", "--model", "mlp"), "takes flat samples"),
    (("--data", "folder:{tree}", "--data-dir", "x", "--model", "cnn"), "leave out --data-dir"),
    (("--data", "folder:{tree}/cat/000.jpg", "--model", "cnn"), "no such folder"),
    (("--data", "digits", "--checkpoint-steps", "2"), "--checkpoint-steps goes with image files"),
    # refused by the fit loop once the data were loaded, leaving OUT/checkpoints/, which then refused the next run
    (("--data", "digits", "--digest-steps", "2"), "--digest-steps goes with image files"),
])
def test_the_image_flags_are_checked_before_anything_runs(tree, tmp_path, capsys, args, message):
    args = [arg.format(tree=tree) for arg in args]
    assert main(["train", "--out", str(tmp_path / "run"), *args]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists(), "a run refused by its checks leaves no trace"
