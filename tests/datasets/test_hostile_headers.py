"""IDX headers that lie: sizes whose product wraps, sizes larger than the file, a small gzip that claims 2^30
labels. Each is a DataError naming the file, found from the headers before the data are read or inflated."""

import gzip
import struct
import tracemalloc
import zlib

import pytest

from minidl.datasets import loadMnist
from minidl.errors import DataError
from tests.datasets.test_files import writeMnist


def header(shape):
    return bytes([0, 0, 0x08, len(shape)]) + b"".join(struct.pack(">I", size) for size in shape)


@pytest.mark.parametrize("shape, data", [
    ((2**32 - 1, 2**32 - 1, 2**32 - 1), b"\0" * 120),  # the product wraps in 64-bit integers
    ((2**21, 2**21, 2**21), b""),  # exactly 2**63: numpy's int64 product is negative
    ((2**31, 28, 28), b"\0" * 784),  # 1.6 TB claimed by a file of one image
])
@pytest.mark.parametrize("compress", [False, True])
def test_a_header_claiming_more_than_the_file_is_refused_naming_it(tmp_path, shape, data, compress):
    writeMnist(tmp_path, compress)
    content = header(shape) + data
    name = "train-images-idx3-ubyte" + (".gz" if compress else "")
    (tmp_path / name).write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(DataError, match=name):
        loadMnist(tmp_path)


def test_a_small_gzip_claiming_many_labels_is_refused_before_it_is_inflated(tmp_path):
    writeMnist(tmp_path, compress=True)  # 6 training images
    count = 2**24
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # a gzip stream of 16 MiB of labels, about 16 KiB
    stream = compressor.compress(header((count,)))
    for _ in range(count // 2**20):
        stream += compressor.compress(bytes(2**20))
    stream += compressor.flush()
    assert len(stream) < 2**16
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(stream)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz holds 6 images but .*train-labels-idx1-"
                                            r"ubyte.gz 16777216 labels"):
            loadMnist(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**21, f"refusing the labels peaked at {peak} bytes: the data were inflated"
    # the 2^30 labels of the report: more than deflate can inflate a file of this size to
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header((2**30,)) + bytes(2**20)))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: the header gives shape .*more than a gzip file"):
        loadMnist(tmp_path)


def test_a_gzip_holding_more_than_its_header_is_not_inflated_past_it(tmp_path):
    writeMnist(tmp_path, compress=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header((3,)) + bytes(2**24)))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: the header gives shape \(3,\) .* holds more"):
        loadMnist(tmp_path)
