"""``minidl train`` on the fit loop: schedules, early stopping, data sets from files, the final report, the logs."""

import csv
import json
import math

import numpy
import pytest

from minidl.cli import main
from tests.datasets.test_files import writeCifar, writeMnist


def runCommand(capsys, *args):
    status = main(["train", *map(str, args)])
    out = capsys.readouterr()
    assert status == 0, out.err
    return out.out


def readLog(folder):
    with open(folder / "log.csv", newline="") as file:
        return [{name: float(value) for name, value in row.items()} for row in csv.DictReader(file)]


def test_a_cosine_schedule_with_warmup_sets_each_steps_rate(tmp_path, capsys):
    runCommand(capsys, "--epochs", 3, "--schedule", "cosine", "--warmup", 1, "--lr", 0.05, "--out", tmp_path,
               "--batch-size", 512, "--tensorboard")
    steps, total = math.ceil(1442 / 512), 3 * math.ceil(1442 / 512)
    expected = [0.0, 0.05, 0.05 * (1 + math.cos(math.pi * steps / (total - steps))) / 2]
    log = readLog(tmp_path)
    assert [row["epoch"] for row in log] == [1, 2, 3]
    numpy.testing.assert_allclose([row["learnRate"] for row in log], expected, rtol=1e-12, atol=1e-15)
    assert log[-1]["valError"] < log[0]["valError"] and (tmp_path / "best.safetensors").is_file()
    assert any(path.name.startswith("events.out.tfevents") for path in (tmp_path / "tensorboard").iterdir())


def test_early_stopping_ends_a_run_that_does_not_improve(tmp_path, capsys):
    out = runCommand(capsys, "--epochs", 10, "--lr", 0, "--early-stop", 2, "--batch-size", 512, "--out", tmp_path)
    assert len(readLog(tmp_path)) == 3 and "epoch   3/10" in out and "epoch   4/10" not in out


def test_mnist_files_train_and_the_report_is_printed_and_written(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    writeMnist(tmp_path / "data", compress=True, rows=8, cols=8, sizes=(64, 30))
    out = runCommand(capsys, "--data", "fashion-mnist", "--data-dir", tmp_path / "data", "--model", "cnn",
                     "--epochs", 1, "--batch-size", 16, "--out", tmp_path / "run")
    assert "cnn on fashion-mnist (64 train, 30 validation)" in out and "confusion matrix" in out
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    confusion = numpy.array(report["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 30
    assert report["accuracy"] == pytest.approx(numpy.trace(confusion) / 30)
    text = (tmp_path / "run" / "report.txt").read_text()
    assert "precision" in text and text in out


def test_cifar10_files_train_with_augmentation(tmp_path, capsys):
    writeCifar(tmp_path, records=(3, 3, 3, 3, 4, 6))
    out = runCommand(capsys, "--data", "cifar10", "--data-dir", tmp_path, "--epochs", 1, "--out", tmp_path / "run",
                     "--model", "cnn", "--augment")
    assert "Augment(crop=4, flip=True)" in out
    assert json.loads((tmp_path / "run" / "report.json").read_text())["confusion"] and len(readLog(tmp_path / "run"))


@pytest.mark.parametrize("flags, message", [
    (["--data", "mnist"], "name their folder with --data-dir"),
    (["--data", "cifar10", "--data-dir", "nowhere"], "missing file nowhere/data_batch_1.bin"),
    (["--data-dir", "."], "digits need no files"),
    (["--warmup", "1"], "--warmup goes with --schedule cosine"),
    (["--augment"], "--augment transforms images: --model mlp takes flat samples"),
    (["--schedule", "cosine", "--warmup", "3", "--epochs", "3"], "--warmup must be shorter"),
])
def test_bad_flag_combinations_are_errors_before_anything_is_written(tmp_path, capsys, flags, message):
    assert main(["train", "--out", str(tmp_path / "run"), *flags]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_resuming_a_finished_run_trains_nothing_and_reports_the_network(tmp_path, capsys):
    runCommand(capsys, "--epochs", 1, "--batch-size", 512, "--out", tmp_path)
    first = json.loads((tmp_path / "report.json").read_text())
    (tmp_path / "report.json").unlink()
    out = runCommand(capsys, "--epochs", 1, "--batch-size", 512, "--out", tmp_path, "--resume")
    assert "epoch   1/1" not in out and json.loads((tmp_path / "report.json").read_text()) == first
    assert len(readLog(tmp_path)) == 1
