"""MINIDL_MAX_EPOCHS and MINIDL_MAX_SAMPLES (minidl/cli/limits.py): caps that lower what minidl train does, each
said on stderr when it takes effect, and a malformed value refused before anything runs."""

import pytest

from minidl.cli import main
from minidl.cli.limits import capEpochs, capSamples
from minidl.errors import DataError
from tests.cli.test_cli import EPOCH_LINE


def test_caps_lower_and_say_so_only_when_they_take_effect(monkeypatch, capsys):
    monkeypatch.setenv("MINIDL_MAX_EPOCHS", "2")
    monkeypatch.setenv("MINIDL_MAX_SAMPLES", "")
    assert capEpochs(20) == 2 and capEpochs(2) == 2 and capEpochs(1) == 1
    assert capSamples(1442, "training samples") == 1442
    monkeypatch.setenv("MINIDL_MAX_SAMPLES", "64")
    assert capSamples(1442, "training samples") == 64 and capSamples(10, "windows") == 10
    assert capsys.readouterr().err.splitlines() == ["minidl: MINIDL_MAX_EPOCHS=2: 2 of the 20 epochs",
                                                    "minidl: MINIDL_MAX_SAMPLES=64: 64 of the 1442 training samples"]


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "two"])
def test_a_malformed_cap_is_refused(monkeypatch, value):
    monkeypatch.setenv("MINIDL_MAX_EPOCHS", value)
    with pytest.raises(DataError, match=f"MINIDL_MAX_EPOCHS must be a positive integer .*got '{value}'"):
        capEpochs(5)


def test_the_command_trains_capped_and_says_so(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MINIDL_MAX_EPOCHS", "1")
    monkeypatch.setenv("MINIDL_MAX_SAMPLES", "100")
    assert main(["train", "--epochs", "3", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr()
    assert "mlp on digits (100 train, 100 validation)" in out.out
    assert [EPOCH_LINE.search(line).group(1) for line in out.out.splitlines() if EPOCH_LINE.search(line)] == ["1"]
    assert out.err.splitlines() == ["minidl: MINIDL_MAX_EPOCHS=1: 1 of the 3 epochs",
                                    "minidl: MINIDL_MAX_SAMPLES=100: 100 of the 1442 training samples",
                                    "minidl: MINIDL_MAX_SAMPLES=100: 100 of the 355 validation samples"]
    monkeypatch.setenv("MINIDL_MAX_SAMPLES", "all")
    assert main(["train", "--out", str(tmp_path / "refused")]) == 1
    assert "MINIDL_MAX_SAMPLES must be a positive integer (or unset), got 'all'" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
