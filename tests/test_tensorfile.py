"""Tensor files: readable by a hand-written safetensors reader, written atomically, refused when damaged."""

import fcntl
import json
import os
import shutil
import stat
import struct
import tempfile
import tracemalloc
import zlib

import numpy
import pytest
import safetensors.numpy

from minidl.errors import CheckpointError
from minidl.tensorfile import parseJson, readTensors, writeTensors
from tests.safetensorsreader import readSafetensors

FORMAT = "minidl.test"


def sampleTensors(offset=0.0):
    rng = numpy.random.default_rng(3)
    return {
        "0.W": rng.standard_normal((4, 3)).astype(numpy.float32) + offset,
        "0.b": numpy.arange(3, dtype=numpy.float64) + offset,
        "half": rng.standard_normal((2, 2, 2)).astype(numpy.float16),
        "count": numpy.array([7], dtype=numpy.int32),
        "scalar": numpy.array(0.5 + offset, dtype=numpy.float64),  # 0-d: a learned temperature, say
    }


def test_round_trip_read_by_hand_and_by_minidl(tmp_path):
    path = tmp_path / "a.safetensors"
    written = sampleTensors()
    writeTensors(path, written, {"format": FORMAT, "note": "hello"})
    for tensors, metadata in (readSafetensors(path), readTensors(path, FORMAT)):
        assert sorted(tensors) == sorted(written)
        for name, array in written.items():
            assert tensors[name].dtype == array.dtype and tensors[name].shape == array.shape
            numpy.testing.assert_array_equal(tensors[name], array)
        assert metadata["format"] == FORMAT and metadata["note"] == "hello"


@pytest.mark.parametrize("failingCall", ["fsync", "replace"])
def test_an_interrupted_write_leaves_the_previous_file_whole(tmp_path, monkeypatch, failingCall):
    path = tmp_path / "a.safetensors"
    writeTensors(path, sampleTensors(), {"format": FORMAT})
    before = path.read_bytes()

    def interrupt(*args):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(os, failingCall, interrupt)
    with pytest.raises(KeyboardInterrupt):
        writeTensors(path, sampleTensors(offset=1.0), {"format": FORMAT})
    monkeypatch.undo()
    assert path.read_bytes() == before
    numpy.testing.assert_array_equal(readTensors(path, FORMAT)[0]["0.W"], sampleTensors()["0.W"])
    assert os.listdir(tmp_path) == ["a.safetensors"], "the temporary file was left behind"


def test_a_write_into_a_missing_folder_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="cannot write"):
        writeTensors(tmp_path / "no" / "such" / "folder.safetensors", sampleTensors(), {"format": FORMAT})


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        readTensors(tmp_path / "absent.safetensors", FORMAT)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip a data byte", "empty"])
def test_damaged_files_are_refused(tmp_path, damage):
    path = tmp_path / "a.safetensors"
    writeTensors(path, sampleTensors(), {"format": FORMAT})
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[:-10]
    elif damage == "garbage":
        raw = bytearray(b"this is not a safetensors file at all")
    elif damage == "flip a data byte":
        raw[-5] ^= 0x40
    else:
        raw = bytearray()
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="damaged"):
        readTensors(path, FORMAT)


def test_foreign_safetensors_files_are_refused(tmp_path):
    path = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"weight": numpy.ones((2, 2), dtype=numpy.float32)}, path)
    with pytest.raises(CheckpointError, match="not a minidl.test file"):
        readTensors(path, FORMAT)
    writeTensors(path, sampleTensors(), {"format": "minidl.other"})
    with pytest.raises(CheckpointError, match="its metadata format is 'minidl.other'"):
        readTensors(path, FORMAT)


def test_names_shapes_and_dtypes_are_checked_against_the_expected_arrays(tmp_path):
    expected, path = sampleTensors(), tmp_path / "a.safetensors"
    writeTensors(path, sampleTensors(offset=2.0), {"format": FORMAT})
    numpy.testing.assert_array_equal(readTensors(path, FORMAT, expected)[0]["0.b"], expected["0.b"] + 2.0)
    cases = [
        ({**{k: v for k, v in expected.items() if k != "count"}, "extra": expected["count"]},
         r"missing tensors \['count'\], unexpected tensors \['extra'\]"),
        ({**expected, "0.W": expected["0.W"].T.copy()}, r"'0.W' is float32 \(3, 4\), expected float32 \(4, 3\)"),
        ({**expected, "0.b": expected["0.b"].astype(numpy.float32)}, r"'0.b' is float32 \(3,\), expected float64"),
    ]
    for written, message in cases:
        writeTensors(path, written, {"format": FORMAT})
        with pytest.raises(CheckpointError, match=message):
            readTensors(path, FORMAT, expected)


def rawHeaderFile(path, header, dataBytes):
    """A safetensors file written by hand: ``header`` (a JSON-able dict) then ``dataBytes`` of zeros, left sparse."""
    text = json.dumps(header).encode()
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(text)) + text)
        file.truncate(8 + len(text) + dataBytes)


def test_the_checksum_covers_the_metadata(tmp_path):
    path = tmp_path / "a.safetensors"
    writeTensors(path, sampleTensors(), {"format": FORMAT, "epoch": "3"})
    raw = path.read_bytes()
    changed = raw.replace(b'"epoch":"3"', b'"epoch":"4"')
    assert changed != raw
    path.write_bytes(changed)
    with pytest.raises(CheckpointError, match="damaged: its metadata and tensors do not match the checksum"):
        readTensors(path, FORMAT)


@pytest.mark.parametrize("case", ["deep JSON", "a 400-digit integer", "a duplicate name", "a header past the end",
                                  "a gap between tensors", "a wrong byte count", "an unknown dtype"])
def test_hostile_headers_are_checkpoint_errors(tmp_path, case):
    path = tmp_path / "a.safetensors"
    entry = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    if case == "deep JSON":
        text = b'{"__metadata__": {"format": "minidl.test"}, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        path.write_bytes(struct.pack("<Q", len(text)) + text)
    elif case == "a 400-digit integer":
        rawHeaderFile(path, {"__metadata__": {"format": FORMAT}, "x": {**entry, "shape": [10**400]}}, 8)
    elif case == "a duplicate name":
        text = b'{"__metadata__": {"format": "minidl.test"}, "x": {"dtype": "F32", "shape": [2], "data_offsets": ' \
               b'[0, 8]}, "x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
        path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(8))
    elif case == "a header past the end":
        path.write_bytes(struct.pack("<Q", 10**6) + b'{"__metadata__": {}}')
    elif case == "a gap between tensors":
        rawHeaderFile(path, {"__metadata__": {"format": FORMAT}, "x": {**entry, "data_offsets": [4, 12]}}, 12)
    elif case == "a wrong byte count":
        rawHeaderFile(path, {"__metadata__": {"format": FORMAT}, "x": {**entry, "shape": [3]}}, 8)
    else:
        rawHeaderFile(path, {"__metadata__": {"format": FORMAT}, "x": {**entry, "dtype": "BF16"}}, 8)
    with pytest.raises(CheckpointError, match=str(path)):
        readTensors(path, FORMAT)


def test_the_metadata_parser_refuses_deep_values_and_huge_integers():
    with pytest.raises(CheckpointError, match="f: the extra entry is not readable JSON: it nests too deep"):
        parseJson("[" * 100_000 + "]" * 100_000, "f", "extra entry")
    with pytest.raises(CheckpointError, match="an integer of 400 digits"):
        parseJson(str(10**399), "f", "extra entry")
    assert parseJson(str(2**128), "f", "random state") == 2**128  # a PCG64 state is 128-bit


def test_an_unreadable_file_says_permission_denied(tmp_path):
    path = tmp_path / "a.safetensors"
    writeTensors(path, sampleTensors(), {"format": FORMAT})
    if os.geteuid() != 0:
        path.chmod(0)
        with pytest.raises(CheckpointError, match=f"cannot read {path}: permission denied"):
            readTensors(path, FORMAT)
        return
    # root reads anything: read in a forked child that became the unprivileged user "nobody"
    folder = tempfile.mkdtemp(prefix="minidl-permission-")
    try:
        os.chmod(folder, 0o755)
        copied = shutil.copy(path, folder)
        os.chmod(copied, 0)
        assert readAsNobody(copied) == f"cannot read {copied}: permission denied (Permission denied)"
    finally:
        shutil.rmtree(folder)


def readAsNobody(path):
    """The CheckpointError message of readTensors(path) in a child process running as the user "nobody"."""
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # the child: never returns into pytest
        message = "no error"
        try:
            os.setgid(65534)
            os.setuid(65534)
            readTensors(path, FORMAT)
        except CheckpointError as error:
            message = str(error)
        finally:
            os.write(writing, message.encode())
            os._exit(0)
    os.close(writing)
    with os.fdopen(reading) as pipe:
        message = pipe.read()
    os.waitpid(child, 0)
    return message


def test_a_large_wrong_file_costs_no_more_memory_than_its_header(tmp_path):
    size = 256 * 2**20
    foreign, misshapen = tmp_path / "foreign.safetensors", tmp_path / "misshapen.safetensors"
    rawHeaderFile(foreign, {"weight": {"dtype": "F32", "shape": [size // 4], "data_offsets": [0, size]}}, size)
    rawHeaderFile(misshapen, {"__metadata__": {"format": FORMAT},
                              "0.W": {"dtype": "F32", "shape": [size // 4], "data_offsets": [0, size]}}, size)
    expected = {"0.W": numpy.zeros((4, 3), numpy.float32)}
    tracemalloc.start()
    try:
        for path, message in ((foreign, "not a minidl.test file"), (misshapen, r"'0.W' is float32 \(67108864,\)")):
            with pytest.raises(CheckpointError, match=message):
                readTensors(path, FORMAT, expected)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"reading a refused {size >> 20} MiB file peaked at {peak} bytes"


def test_writes_honour_the_umask(tmp_path):
    path = tmp_path / "a.safetensors"
    previous = os.umask(0o077)
    try:
        writeTensors(path, sampleTensors(), {"format": FORMAT})
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        os.umask(0o002)
        writeTensors(path, sampleTensors(), {"format": FORMAT})
        assert stat.S_IMODE(path.stat().st_mode) == 0o664
    finally:
        os.umask(previous)


def test_a_write_through_a_symbolic_link_replaces_the_links_target(tmp_path):
    (tmp_path / "store").mkdir()
    target, link = tmp_path / "store" / "a.safetensors", tmp_path / "latest.safetensors"
    writeTensors(target, sampleTensors(), {"format": FORMAT})
    link.symlink_to(target)
    writeTensors(link, sampleTensors(offset=1.0), {"format": FORMAT})
    assert link.is_symlink() and os.readlink(link) == str(target)
    numpy.testing.assert_array_equal(readTensors(target, FORMAT)[0]["0.b"], sampleTensors(offset=1.0)["0.b"])
    assert sorted(os.listdir(tmp_path)) == ["latest.safetensors", "store"]
    assert os.listdir(tmp_path / "store") == ["a.safetensors"]


def test_the_next_write_removes_stray_temporaries_but_not_a_live_writers(tmp_path):
    path = tmp_path / "a.b"
    stray = [tmp_path / ".a.b.abcd_123.tmp", tmp_path / ".a.b.zzzzzzzz.tmp"]
    kept = [tmp_path / ".a.b.c.abcd_123.tmp", tmp_path / ".a.b.short.tmp", tmp_path / ".other.abcd_123.tmp"]
    for file in stray + kept:
        file.write_bytes(b"half a checkpoint")
    live = tmp_path / ".a.b.live0000.tmp"
    with open(live, "wb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # a writer still at work in another process
        writeTensors(path, sampleTensors(), {"format": FORMAT})
    assert sorted(os.listdir(tmp_path)) == sorted(["a.b", live.name] + [file.name for file in kept])


def test_a_file_whose_checksum_leaves_out_the_metadata_is_refused_as_older(tmp_path):
    """Files of minidl before the checksum covered the metadata: crc32 over the tensors alone."""
    path, tensors = tmp_path / "old.safetensors", sampleTensors()
    crc = 0
    for name in sorted(tensors):  # the older scheme, written out here as the oracle
        crc = zlib.crc32(f"{name}:{tensors[name].dtype.str}:{tensors[name].shape};".encode(), crc)
        crc = zlib.crc32(tensors[name].reshape(-1).view(numpy.uint8), crc)
    safetensors.numpy.save_file(tensors, path, metadata={"format": FORMAT, "epoch": "4", "crc32": str(crc)})
    with pytest.raises(CheckpointError, match="written by an older minidl, whose checksum left out the metadata"):
        readTensors(path, FORMAT)
