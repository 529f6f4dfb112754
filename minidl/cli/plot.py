"""Training curves as a picture: error per epoch (train and validation) and validation accuracy, from a run's log."""

import csv
import io
import os

from minidl.atomicfile import writeAtomically
from minidl.errors import DataError


def plotLog(logPath, path):
    """Draw ``plotCurves`` from a CSV log (minidl.train.CsvLog) of a run with validation."""
    try:
        with open(logPath, newline="", encoding="utf-8") as file:
            history = [{name: float(value) for name, value in row.items()} for row in csv.DictReader(file)]
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read the log {logPath}: {error}") from error
    plotCurves(history, path)


def plotCurves(history, path):
    """Write a two-panel figure of ``history`` (dicts with epoch, trainError, valError, valAccuracy) to ``path``;
    the file type follows its suffix (.png); written atomically (``minidl.atomicfile``). Needs matplotlib (the
    ``datasets`` extra)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [entry["epoch"] for entry in history]
    figure = Figure(figsize=(10, 4), layout="tight")
    errors, accuracy = figure.subplots(1, 2)
    errors.plot(epochs, [entry["trainError"] for entry in history], marker="o", label="train")
    errors.plot(epochs, [entry["valError"] for entry in history], marker="o", label="validation")
    errors.set(xlabel="epoch", ylabel="mean cross-entropy", yscale="log", title="error")
    errors.legend()
    accuracy.plot(epochs, [100 * entry["valAccuracy"] for entry in history], marker="o", color="tab:green")
    accuracy.set(xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy")
    accuracy.grid(alpha=0.3)
    for axes in (errors, accuracy):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    picture = io.BytesIO()
    figure.savefig(picture, dpi=100, format=os.path.splitext(path)[1].lstrip(".").lower())
    writeAtomically(path, picture.getvalue(), DataError)
