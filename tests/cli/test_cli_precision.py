"""``minidl train --dtype`` and ``--nonfinite``: float16 prints its loss scale and skipped steps, float64 trains, and
a diverging run stops with a non-zero exit and a clear message, the last good checkpoint intact."""

import re

import pytest

from minidl.cli import main
from tests.cli.test_cli import EPOCH_LINE
from tests.safetensorsreader import readSafetensors

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow warnings of diverging runs
SCALE_LINE = re.compile(r"loss scale (\d+) +skipped (\d+)")


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_dtype_trains_the_network_in_that_dtype(tmp_path, capsys, dtype):
    status = main(["train", "--dtype", dtype, "--epochs", "1", "--optimizer", "adam", "--lr", "0.003",
                   "--batch-size", "256", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0
    accuracy = float(EPOCH_LINE.search(out).group(4))
    assert accuracy > 80.0, out
    tensors, _ = readSafetensors(tmp_path / "checkpoint.safetensors")
    assert str(tensors["module.0.W"].dtype) == dtype
    if dtype == "float16":
        assert SCALE_LINE.search(out) is not None, out
        assert str(tensors["optimizer.0.W.master"].dtype) == "float32"
    else:
        assert SCALE_LINE.search(out) is None and "optimizer.0.W.master" not in tensors


def test_a_diverging_run_exits_non_zero_and_keeps_the_good_checkpoint(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--out", str(tmp_path)]) == 0
    good = (tmp_path / "checkpoint.safetensors").read_bytes()
    capsys.readouterr()
    status = main(["train", "--epochs", "2", "--optimizer", "sgd", "--lr", "1e30", "--overwrite",
                   "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 1
    assert re.search(r"minidl: error: (Variable '[\w.]+' has a non-finite gradient|training diverged)", err), err
    assert (tmp_path / "checkpoint.safetensors").read_bytes() == good


def test_skip_still_refuses_to_checkpoint_a_diverged_epoch(tmp_path, capsys):
    status = main(["train", "--epochs", "1", "--optimizer", "sgd", "--lr", "1e30", "--nonfinite", "skip",
                   "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 1 and "training diverged in epoch 1" in err, err
    assert not (tmp_path / "checkpoint.safetensors").exists()
