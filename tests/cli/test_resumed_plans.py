"""A resumed run keeps its schedule's plan (its horizon and warmup), and the lines it prints say the run as it
is: the base rate of a warmup rather than its 0, the step count a resumed optimizer continues from."""

import csv
import re

import pytest

from minidl.cli import main
from minidl.cli import train as trainCommand
from tests.cli.test_cli_protection import command

WARMUP_RUN = ("--schedule", "cosine", "--warmup", 1, "--lr", 0.05, "--batch-size", 256)


def logRows(folder):
    with open(folder / "log.csv", newline="") as file:
        return [{name: row[name] for name in ("epoch", "trainError", "valError", "learnRate")}
                for row in csv.DictReader(file)]


@pytest.mark.parametrize("schedule", ["cosine", "onecycle", "step", "exponential"])
def test_more_epochs_than_a_resumed_schedule_was_planned_over_are_refused(tmp_path, capsys, schedule):
    assert command(capsys, "--epochs", 2, "--schedule", schedule, "--batch-size", 256, "--out", tmp_path)[0] == 0
    before = (tmp_path / "checkpoint.safetensors").read_bytes()
    status, out, err = command(capsys, "--epochs", 3, "--resume", "--out", tmp_path)
    assert status == 1 and "epoch" not in out
    assert f"--epochs 3 is more than the 2 epochs the checkpoint's --schedule {schedule} was planned over" in err
    assert (tmp_path / "checkpoint.safetensors").read_bytes() == before
    status, _, err = command(capsys, "--epochs", 2, "--resume", "--warmup", 1, "--out", tmp_path)
    assert status == 1 and "--warmup 1 contradicts the checkpoint" in err


def test_an_interrupted_warmup_run_resumes_on_its_own_plan(tmp_path, capsys, monkeypatch):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert command(capsys, "--epochs", 3, *WARMUP_RUN, "--out", whole)[0] == 0

    def interrupt(self, fit, entry):
        if entry["epoch"] == 3:
            raise KeyboardInterrupt("stopped after the checkpoint of epoch 2")

    with monkeypatch.context() as patch:
        patch.setattr(trainCommand.StopOnDivergence, "onEpochEnd", interrupt)
        assert main(["train", "--epochs", "3", *map(str, WARMUP_RUN), "--out", str(cut)]) == 130  # interrupted
    capsys.readouterr()
    status, out, err = command(capsys, "--epochs", 3, "--resume", "--out", cut)
    assert status == 0, err
    assert logRows(cut) == logRows(whole)
    assert "after a warmup of" in out.splitlines()[0]


def test_the_header_and_epoch_lines_say_the_rate_of_a_warmup(tmp_path, capsys):
    status, out, _ = command(capsys, "--epochs", 2, *WARMUP_RUN, "--optimizer", "adam", "--out", tmp_path)
    assert status == 0
    header = out.splitlines()[0]
    assert "alpha=0.05" in header and "t=0," in header and "CosineSchedule from 0.05 over 2 epochs" in header
    assert re.search(r"epoch +1/2 .* lr 0\.\.0\.05 ", out), out
    status, out, _ = command(capsys, "--epochs", 2, "--resume", "--out", tmp_path)
    assert status == 0
    steps = 2 * -(-1442 // 256)
    assert f"t={steps}," in out.splitlines()[0], out
