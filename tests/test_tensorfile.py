"""Tensor files: readable by a hand-written safetensors reader, written atomically, refused when damaged."""

import os

import numpy
import pytest
import safetensors.numpy

from minidl.errors import CheckpointError
from minidl.tensorfile import readTensors, writeTensors
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
