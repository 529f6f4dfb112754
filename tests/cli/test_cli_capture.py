"""``minidl train`` captures its steps by default and ``--no-capture`` runs them ordinarily: the same checkpoint."""

from minidl.cli import main
from tests.safetensorsreader import readSafetensors


def test_captured_and_ordinary_runs_write_the_same_tensors(tmp_path, capsys):
    for folder, flags in (("captured", []), ("ordinary", ["--no-capture"])):
        status = main(["train", "--epochs", "2", "--batch-size", "64", "--optimizer", "adam",
                       "--out", str(tmp_path / folder), *flags])
        assert status == 0, capsys.readouterr().err
    captured, capturedMeta = readSafetensors(tmp_path / "captured" / "checkpoint.safetensors")
    ordinary, ordinaryMeta = readSafetensors(tmp_path / "ordinary" / "checkpoint.safetensors")
    assert captured.keys() == ordinary.keys() and len(captured) > 4
    for name in captured:  # parameters, optimizer state, buffers: every byte
        assert captured[name].tobytes() == ordinary[name].tobytes(), name
    assert capturedMeta["random"] == ordinaryMeta["random"] and capturedMeta["attrs"] == ordinaryMeta["attrs"]
