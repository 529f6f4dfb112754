"""examples/fit_digits.py, run in this process: it learns the digits and its best checkpoint is the best epoch."""

import re
import runpy
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fit_digits.py"


def test_the_fit_example_learns_the_digits_and_keeps_the_best_epoch(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), str(tmp_path)])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    errors = [float(value) for value in re.findall(r"val error (\S+)  val accuracy", out)]
    accuracies = [float(value) for value in re.findall(r"val accuracy (\S+)%", out)]
    best = int(re.search(r"best epoch (\d+)", out).group(1))
    assert errors[best - 1] == min(errors) and accuracies[best - 1] >= 95.0, out
    assert (tmp_path / "log.csv").read_text().count("\n") == len(errors) + 1
