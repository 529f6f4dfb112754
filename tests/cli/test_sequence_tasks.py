"""minidl train --task digits-rows and --task text, and minidl sample, end to end."""

import json
import math
import re

import pytest

from minidl.cli import main
from minidl.train.checkpoint import readCheckpointSummary

ROWS_LINE = re.compile(r"epoch +(\d+)/\d+ +train error ([\d.]+) +val error ([\d.]+) +val accuracy ([\d.]+)%")
TEXT_LINE = re.compile(r"epoch +(\d+)/\d+ +train loss ([\d.]+) +held-out loss ([\d.]+) +bits/char ([\d.]+)")


def run(capsys, *args):
    status = main(list(map(str, args)))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_digits_rows_default_reaches_95_percent(tmp_path, capsys):
    status, out, err = run(capsys, "train", "--task", "digits-rows", "--out", tmp_path)
    assert status == 0, err
    epochs = [ROWS_LINE.search(line).groups() for line in out.splitlines() if ROWS_LINE.search(line)]
    assert len(epochs) == 12 and float(epochs[-1][3]) >= 95.0, out


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_text_task_reports_bits_per_char_and_samples(model, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("abcd efgh ijkl. " * 80)
    status, out, err = run(capsys, "train", "--task", "text", "--model", model, "--text", text, "--epochs", 2,
                           "--windows", 64, "--batch-size", 16, "--out", tmp_path / "run", "--lr", 0.01)
    assert status == 0, err
    epochs = [TEXT_LINE.search(line).groups() for line in out.splitlines() if TEXT_LINE.search(line)]
    assert [int(epoch[0]) for epoch in epochs] == [1, 2]
    for _, _, loss, bits in epochs:
        assert float(bits) == pytest.approx(float(loss) / math.log(2), abs=2e-3)
    assert float(epochs[-1][2]) < math.log(14), "the held-out loss falls below a uniform guess over 14 symbols"

    status, out, err = run(capsys, "sample", "--out", tmp_path / "run", "--prompt", "abcd", "--length", 30)
    assert status == 0, err
    written = out.rstrip("\n")
    assert written.startswith("abcd") and len(written) == 34 and set(written) <= set("abcdefghijkl. ")


@pytest.mark.parametrize("args, message", [
    (["train", "--task", "text", "--model", "mlp"], "language model"),
    (["train", "--task", "digits-rows", "--model", "cnn"], "--model lstm"),
    (["train", "--model", "transformer"], "--task classify trains"),
    (["train", "--task", "text", "--prompt", "\x00"], "outside the vocabulary"),
    (["train", "--task", "text", "--text", "/nonexistent/file.txt"], "cannot read"),
    (["train", "--task", "text", "--text", ""], "--text '' names no file"),
    (["train", "--task", "text", "--text", "/dev/null"], "got 0 characters"),
    (["train", "--task", "text", "--sample", "5", "--temperature", "nan"], "--temperature must be positive"),
    (["train", "--task", "text", "--sample", "5", "--temperature", "0"], "--temperature must be positive"),
    # a flag the task does not read is refused, not ignored (--dtype float64 trained the text model in float32)
    (["train", "--task", "text", "--dtype", "float64"], "--dtype is not read by --task text"),
    (["train", "--task", "text", "--schedule", "cosine"], "--schedule is not read by --task text"),
    (["train", "--task", "text", "--nonfinite", "skip"], "--nonfinite is not read by --task text"),
    (["train", "--task", "text", "--data", "mnist"], "--data is not read by --task text"),
    (["train", "--task", "text", "--workers", "2"], "--workers is not read by --task text"),
    (["train", "--text", "/dev/null"], "--text is not read by --task classify"),
    (["train", "--temperature", "2"], "--temperature is not read by --task classify"),
    (["train", "--task", "digits-rows", "--sample", "5"], "--sample is not read by --task digits-rows"),
])
def test_bad_task_arguments_are_refused_before_training(args, message, tmp_path, capsys):
    status, out, err = run(capsys, *args, "--out", tmp_path)
    assert status == 1 and message in err and "epoch" not in out


def test_a_text_run_resumes_only_on_the_characters_it_was_trained_on(tmp_path, capsys):
    """Another text of as many symbols fitted the checkpoint's shapes, and the resumed run went on with each code
    standing for another character."""
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("abcd efgh ijkl. " * 80)
    second.write_text("mnop qrst uvwx, " * 80)  # 14 symbols too
    common = ["--task", "text", "--model", "lstm", "--windows", 16, "--batch-size", 16, "--out", tmp_path / "run"]
    status, _, err = run(capsys, "train", *common, "--text", first, "--epochs", 1)
    assert status == 0, err
    checkpoint = (tmp_path / "run" / "checkpoint.safetensors").read_bytes()
    status, out, err = run(capsys, "train", *common, "--text", second, "--epochs", 2, "--resume")
    assert status == 1 and "trained on a text of other characters" in err and "epoch" not in out
    assert (tmp_path / "run" / "checkpoint.safetensors").read_bytes() == checkpoint
    status, out, err = run(capsys, "train", *common, "--text", first, "--epochs", 2, "--resume")
    assert status == 0 and "epoch   2/2" in out, err
    # another --seed was ignored: the resumed run draws on from the checkpoint's random state
    status, out, err = run(capsys, "train", *common, "--text", first, "--epochs", 3, "--resume", "--seed", 5)
    assert status == 1 and "--seed 5 contradicts the checkpoint" in err and "epoch" not in out
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["settings"]["seed"] == 0
    # without --task text, the resume failed on a list of tensor names of another model
    status, out, err = run(capsys, "train", "--resume", "--epochs", 3, "--out", tmp_path / "run")
    assert status == 1 and "is a checkpoint of --task text: resume it with --task text" in err, err


def test_a_text_run_resumes_with_its_model_and_optimizer_and_the_rate_given(tmp_path, capsys):
    """Left out on a resume, --model and --optimizer were the task's defaults (lstm, adam), so a transformer run
    failed on a list of tensor names; --lr was ignored (the checkpoint's rate was restored over it)."""
    text = tmp_path / "text.txt"
    text.write_text("abcd efgh ijkl. " * 80)
    common = ["--task", "text", "--text", text, "--windows", 16, "--batch-size", 16, "--out", tmp_path / "run"]
    status, _, err = run(capsys, "train", *common, "--model", "transformer", "--optimizer", "sgd", "--lr", 0.1,
                         "--epochs", 1)
    assert status == 0, err
    status, out, err = run(capsys, "train", *common, "--epochs", 2, "--resume", "--lr", 0.05)
    assert status == 0 and "transformer on" in out and "resuming with --lr 0.05" in out, err
    summary = readCheckpointSummary(tmp_path / "run" / "checkpoint.safetensors")
    assert summary.epoch == 2 and summary.optimizer == "SGD" and summary.attrs["learnRate"] == 0.05
    status, out, err = run(capsys, "train", *common, "--epochs", 3, "--resume", "--model", "lstm")
    assert status == 1 and "--model lstm contradicts the checkpoint" in err and "epoch" not in out


def test_sample_refuses_a_checkpoint_of_another_task(tmp_path, capsys):
    status, _, err = run(capsys, "train", "--epochs", 1, "--out", tmp_path)
    assert status == 0, err
    status, _, err = run(capsys, "sample", "--out", tmp_path)
    assert status == 1 and "not a checkpoint of the text task" in err
