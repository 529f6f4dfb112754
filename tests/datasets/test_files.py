"""MNIST / Fashion-MNIST IDX files and CIFAR-10 binary batches, written here byte by byte in their formats."""

import gzip
import struct

import numpy
import pytest

from minidl.datasets import loadCifar10, loadMnist
from minidl.errors import DataError

RNG = numpy.random.default_rng(0)


def idxBytes(array):
    """An IDX file: 0, 0, type 0x08 (unsigned byte), the number of dimensions, big-endian uint32 sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", size) for size in array.shape)
    return header + array.astype(numpy.uint8).tobytes()


def writeMnist(folder, compress, rows=5, cols=4, sizes=(6, 3)):
    parts = {}
    for (prefix, count) in zip(("train", "t10k"), sizes):
        images = RNG.integers(0, 256, size=(count, rows, cols), dtype=numpy.uint8)
        labels = RNG.integers(0, 10, size=count, dtype=numpy.uint8)
        for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            content = idxBytes(array)
            if compress:
                (folder / (name + ".gz")).write_bytes(gzip.compress(content))
            else:
                (folder / name).write_bytes(content)
        parts[prefix] = (images, labels)
    return parts


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_files_load_as_scaled_images_and_labels(tmp_path, compress):
    parts = writeMnist(tmp_path, compress)
    data = loadMnist(tmp_path)
    assert data.trainData.dtype == numpy.float32 and data.trainLabels.dtype == numpy.int32
    assert data.trainData.shape == (6, 1, 5, 4) and data.valData.shape == (3, 1, 5, 4) and data.classes == 10
    numpy.testing.assert_array_equal(data.trainData[:, 0], parts["train"][0] / numpy.float32(255))
    numpy.testing.assert_array_equal(data.valLabels, parts["t10k"][1])
    flat = loadMnist(tmp_path, flat=True)
    numpy.testing.assert_array_equal(flat.trainData, data.trainData.reshape(6, 20))


def corrupt(path, how):
    content = path.read_bytes()
    if how == "magic":
        path.write_bytes(b"\0\0\x0d" + content[3:])
    elif how == "short":
        path.write_bytes(content[:-1])
    elif how == "long":
        path.write_bytes(content + b"\0")
    elif how == "header":
        path.write_bytes(content[:6])


@pytest.mark.parametrize("how", ["magic", "short", "long", "header", "missing"])
def test_a_missing_or_malformed_mnist_file_is_named(tmp_path, how):
    writeMnist(tmp_path, compress=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    if how == "missing":
        path.unlink()
    else:
        corrupt(path, how)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        loadMnist(tmp_path)


def test_mismatched_mnist_files_are_named(tmp_path):
    writeMnist(tmp_path, compress=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idxBytes(numpy.zeros(5, numpy.uint8)))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        loadMnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idxBytes(numpy.full(6, 10, numpy.uint8)))
    with pytest.raises(DataError, match=r"train-labels.*\[0, 10\)"):
        loadMnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x1f\x8b not gzip")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idxBytes(numpy.zeros(6, numpy.uint8)))
    (tmp_path / "t10k-labels-idx1-ubyte").rename(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        loadMnist(tmp_path)


def writeCifar(folder, records=(4, 2, 3, 1, 2, 5)):
    """Each record: the label byte, then 1024 red, 1024 green, 1024 blue bytes (rows of 32 in order)."""
    written = {}
    names = [f"data_batch_{index}.bin" for index in range(1, 6)] + ["test_batch.bin"]
    for name, count in zip(names, records):
        labels = RNG.integers(0, 10, size=count, dtype=numpy.uint8)
        pixels = RNG.integers(0, 256, size=(count, 3, 32, 32), dtype=numpy.uint8)
        (folder / name).write_bytes(b"".join(bytes([label]) + image.tobytes() for label, image in zip(labels, pixels)))
        written[name] = (pixels, labels)
    return written


def test_cifar10_batches_load_in_order_as_scaled_rgb_images(tmp_path):
    nested = tmp_path / "cifar-10-batches-bin"
    nested.mkdir()
    written = writeCifar(nested)
    data = loadCifar10(tmp_path)
    assert data.trainData.shape == (12, 3, 32, 32) and data.valData.shape == (5, 3, 32, 32)
    assert data.trainData.dtype == numpy.float32 and data.valLabels.dtype == numpy.int32
    train = [written[f"data_batch_{index}.bin"] for index in range(1, 6)]
    numpy.testing.assert_array_equal(data.trainData, numpy.concatenate([p for p, _ in train]) / numpy.float32(255))
    numpy.testing.assert_array_equal(data.trainLabels, numpy.concatenate([labels for _, labels in train]))
    first = written["test_batch.bin"][0][0]
    assert data.valData[0, 1, 2, 3] == first[1, 2, 3] / numpy.float32(255)  # green plane, row 2, column 3
    assert loadCifar10(nested, flat=True).trainData.shape == (12, 3072)


@pytest.mark.parametrize("how", ["missing", "short", "label"])
def test_a_missing_or_malformed_cifar10_file_is_named(tmp_path, how):
    writeCifar(tmp_path)
    path = tmp_path / "data_batch_3.bin"
    if how == "missing":
        path.unlink()
    elif how == "short":
        path.write_bytes(path.read_bytes()[:-1])
    else:
        path.write_bytes(b"\x0a" + path.read_bytes()[1:])
    with pytest.raises(DataError, match="data_batch_3.bin"):
        loadCifar10(tmp_path)
