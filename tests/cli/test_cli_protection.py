"""The command protects work: no run replaces a checkpoint unless told, a resume never ignores a flag, and every
flag is checked before anything is trained or written."""

import re
import shutil

import pytest

from minidl.cli import main
from minidl.cli.checks import checkOnEveryRank, plotFile
from minidl.errors import CheckpointError, DistributedError, MinidlError

CHECKPOINT = "checkpoint.safetensors"


def command(capsys, *args):
    """(exit status, stdout, stderr) of ``minidl train ARGS``; a usage error is status 2."""
    try:
        status = main(["train", *map(str, args)])
    except SystemExit as exit:
        status = exit.code
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.fixture(scope="module")
def oneEpoch(tmp_path_factory):
    """The folder of a 1-epoch run with the defaults (copy it: tests must not change it)."""
    folder = tmp_path_factory.mktemp("oneEpoch")
    assert main(["train", "--epochs", "1", "--out", str(folder)]) == 0
    return folder


def test_a_new_run_never_replaces_a_checkpoint_unless_told(tmp_path, capsys, oneEpoch):
    shutil.copy(oneEpoch / CHECKPOINT, tmp_path)
    before = (tmp_path / CHECKPOINT).read_bytes()
    status, out, err = command(capsys, "--epochs", 1, "--out", tmp_path, "--lr", 0)
    assert status == 1 and "epoch" not in out
    assert f"minidl: error: {tmp_path / CHECKPOINT} already holds a checkpoint: pass --resume" in err
    assert "or --overwrite" in err and (tmp_path / CHECKPOINT).read_bytes() == before
    status, _, err = command(capsys, "--epochs", 1, "--out", tmp_path, "--resume", "--overwrite")
    assert status == 2 and "not allowed with argument" in err
    status, out, _ = command(capsys, "--epochs", 1, "--out", tmp_path, "--overwrite", "--optimizer", "sgd")
    assert status == 0 and "SGD" in out and (tmp_path / CHECKPOINT).read_bytes() != before


def test_a_resume_takes_the_runs_settings_and_reports_the_flags_it_applies(tmp_path, capsys):
    started = command(capsys, "--epochs", 1, "--out", tmp_path, "--optimizer", "sgd", "--lr", 0.1,
                      "--batch-size", 64)
    assert started[0] == 0
    status, out, _ = command(capsys, "--epochs", 2, "--out", tmp_path, "--resume")
    assert status == 0 and "resuming with" not in out
    assert re.search(r"SGD\(.*\), .*batch 64", out) and re.search(r"epoch +2/2 .* lr 0\.1 ", out), out
    status, out, _ = command(capsys, "--epochs", 3, "--out", tmp_path, "--resume", "--lr", 0.05,
                             "--batch-size", 32)
    assert status == 0
    reports = [line for line in out.splitlines() if line.startswith("resuming with")]
    assert reports == ["resuming with --batch-size 32 (the checkpoint's run had 64), "
                       "--lr 0.05 (the checkpoint's run had 0.1)"]
    assert re.search(r"SGD\(.*\), .*batch 32", out) and re.search(r"epoch +3/3 .* lr 0\.05 ", out), out
    assert command(capsys, "--epochs", 3, "--out", tmp_path, "--resume", "--batch-size", 32)[0] == 0


@pytest.mark.parametrize("flag, value, had", [("--model", "cnn", "mlp"), ("--optimizer", "adam", "adagrad"),
                                              ("--seed", 5, "0"), ("--schedule", "cosine", "None")])
def test_a_resume_refuses_a_flag_that_contradicts_the_checkpoint(tmp_path, capsys, oneEpoch, flag, value, had):
    shutil.copy(oneEpoch / CHECKPOINT, tmp_path)
    before = (tmp_path / CHECKPOINT).read_bytes()
    status, out, err = command(capsys, "--epochs", 2, "--out", tmp_path, "--resume", flag, value)
    assert status == 1 and "epoch" not in out
    assert f"minidl: error: {flag} {value} contradicts the checkpoint" in err and f"has {flag} {had}" in err
    assert (tmp_path / CHECKPOINT).read_bytes() == before


@pytest.mark.parametrize("plot, message", [
    ("curves.xyz", r"argument --plot: .*curves.xyz: matplotlib writes the file types .*png.*; got 'xyz'"),
    ("curves", r"argument --plot: .*curves: matplotlib writes the file types .*; got 'no suffix'"),
])
def test_the_plots_file_type_is_checked_before_training(tmp_path, capsys, plot, message):
    status, out, err = command(capsys, "--epochs", 1, "--out", tmp_path / "run", "--plot", tmp_path / plot)
    assert status == 2 and re.search(message, err) and "epoch" not in out
    assert not (tmp_path / "run").exists()


def test_every_file_type_matplotlib_writes_is_accepted(tmp_path):
    for suffix in ("png", "pdf", "svg", "JPG"):
        assert plotFile(str(tmp_path / f"curves.{suffix}")) == str(tmp_path / f"curves.{suffix}")


class FakeRanks:
    """What checkOnEveryRank needs of a NodeInfo: this rank's place, and the other ranks' check results (an error
    message, or None and their settings: ``settings``, by default none)."""

    def __init__(self, index, others, settings=None):
        settings = settings or [{} for _ in others]
        self.index, self.gridsize, self.isRoot = index, len(others) + 1, index == 0
        self.others = [(message, None if message else values) for message, values in zip(others, settings)]

    def allGather(self, value):
        gathered = list(self.others)
        gathered.insert(self.index, value)
        return gathered


def test_a_check_that_fails_on_any_rank_is_raised_once_on_rank_0():
    def fails():
        raise CheckpointError("no checkpoint file at runs")

    assert checkOnEveryRank(FakeRanks(0, [None]), lambda: "fine") == ("fine", None)
    assert checkOnEveryRank(None, lambda: "fine") == ("fine", None)
    with pytest.raises(CheckpointError, match="^no checkpoint file at runs$"):
        checkOnEveryRank(FakeRanks(0, ["no checkpoint file at runs"]), fails)
    assert checkOnEveryRank(FakeRanks(1, ["no checkpoint file at runs"]), fails) == (None, 1)  # quiet elsewhere
    with pytest.raises(MinidlError, match="^rank 2 of 3: disk full$"):
        checkOnEveryRank(FakeRanks(0, [None, "disk full"]), lambda: "fine")
    assert checkOnEveryRank(FakeRanks(2, [None, None]), fails)[1] == 1


def test_ranks_with_other_settings_are_refused_naming_the_first_difference():
    mine = {"seed": 0, "batch_size": 128}
    assert checkOnEveryRank(FakeRanks(0, [None], [dict(mine)]), lambda: "fine", lambda: mine) == ("fine", None)
    with pytest.raises(DistributedError, match="^rank 2 of 3 runs with --batch-size 64, rank 0 with --batch-size "
                                               "128: every rank must train with the same settings$"):
        checkOnEveryRank(FakeRanks(0, [None, None], [mine, {"seed": 0, "batch_size": 64}]), lambda: "fine",
                         lambda: mine)
    assert checkOnEveryRank(FakeRanks(1, [None], [{"seed": 1, "batch_size": 128}]), lambda: "fine",
                            lambda: mine) == (None, 1)
