"""Every whole-file writer of minidl goes through one atomic writer: the umask, symbolic links, stale
temporaries, fsync of the file and of its folder, and an interrupted write keeping the previous file."""

import fcntl
import os
import stat

import numpy
import pytest

from minidl.backend import toDevice
from minidl.nn import Linear, Sequential
from minidl.optim import AdaGrad
from minidl.train import saveCheckpoint


def net(offset):
    """A network whose weights are all ``offset``, so that two writes give different bytes."""
    module = Sequential(Linear(3, 2))
    for var in module.getVarTable().values():
        var.data[...] = offset
    return module


def writeCheckpoint(path, offset):
    module = net(offset)
    saveCheckpoint(path, module, AdaGrad().setupOn(module), offset)


def writeOnnx(path, offset):
    pytest.importorskip("onnx")
    from minidl.onnx import export

    export(net(offset), path, toDevice(numpy.full((1, 3), offset, dtype=numpy.float32)))


def writeTorchState(path, offset):
    from minidl.interop import saveTorchStateDict

    saveTorchStateDict(net(offset), path)


def writeModule(path, offset):
    net(offset).save(path)


def writeReport(path, offset):
    from minidl.cli.train import writeReport as write
    from minidl.train.metrics import ClassReport

    report = ClassReport(numpy.array([[offset + 1, 0], [1, 2]]), {})
    write(report, os.path.dirname(path), lambda *args, **kwargs: None)


WRITERS = {"checkpoint": (writeCheckpoint, "a.safetensors"), "module": (writeModule, "a.safetensors"),
           "torch": (writeTorchState, "a.safetensors"), "onnx": (writeOnnx, "a.onnx"),
           "report": (writeReport, "report.txt")}


@pytest.fixture(params=sorted(WRITERS))
def writer(request):
    return WRITERS[request.param]


def test_writes_honour_the_umask(writer, tmp_path):
    write, name = writer
    previous = os.umask(0o077)
    try:
        write(str(tmp_path / name), 1)
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
        os.umask(0o002)
        write(str(tmp_path / name), 2)
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o664
    finally:
        os.umask(previous)


def test_a_write_through_a_symbolic_link_replaces_its_target(writer, tmp_path):
    write, name = writer
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / name
    write(str(target), 1)
    before = target.read_bytes()
    (tmp_path / "out").mkdir()
    link = tmp_path / "out" / name
    link.symlink_to(target)
    write(str(link), 2)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() != before
    assert name in os.listdir(tmp_path / "store") and not any(entry.startswith(".") for entry in
                                                                os.listdir(tmp_path / "store"))


def test_stale_temporaries_are_removed_and_a_live_writers_kept(writer, tmp_path):
    write, name = writer
    stale = tmp_path / f".{name}.abcd_123.tmp"
    stale.write_bytes(b"half a file")
    live = tmp_path / f".{name}.live0000.tmp"
    with open(live, "wb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        write(str(tmp_path / name), 1)
    assert not stale.exists() and live.exists()


def test_the_file_and_its_folder_are_flushed_to_disk(writer, tmp_path, monkeypatch):
    write, name = writer
    synced, fsync = [], os.fsync

    def record(handle):
        synced.append(os.readlink(f"/proc/self/fd/{handle}"))
        fsync(handle)

    monkeypatch.setattr(os, "fsync", record)
    write(str(tmp_path / name), 1)
    assert str(tmp_path) in synced, "the folder holding the rename was not flushed"
    assert any(os.path.basename(path).startswith(f".{name}.") for path in synced), "the file was not flushed"


def test_an_interrupted_write_keeps_the_previous_file_and_leaves_no_temporary(writer, tmp_path, monkeypatch):
    write, name = writer
    write(str(tmp_path / name), 1)
    before = sorted(os.listdir(tmp_path)), (tmp_path / name).read_bytes()

    def cut(*args):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(os, "replace", cut)
    with pytest.raises(KeyboardInterrupt):
        write(str(tmp_path / name), 2)
    monkeypatch.undo()
    assert (sorted(os.listdir(tmp_path)), (tmp_path / name).read_bytes()) == before
