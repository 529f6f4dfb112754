"""An independent reader of the safetensors format, written from its specification, as a test oracle:
8 bytes little-endian header length N, N bytes of JSON header (``__metadata__`` and, per tensor, dtype,
shape and [begin, end) byte offsets into the data that follows), then the data."""

import json
import struct

import numpy

DTYPES = {"F16": numpy.float16, "F32": numpy.float32, "F64": numpy.float64, "I32": numpy.int32, "I64": numpy.int64}


def readSafetensors(path):
    """(tensors, metadata) read by hand; fails on anything outside the specification."""
    with open(path, "rb") as file:
        raw = file.read()
    (headerSize,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + headerSize])
    data = raw[8 + headerSize:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        array = numpy.frombuffer(data[begin:end], dtype=numpy.dtype(DTYPES[entry["dtype"]]).newbyteorder("<"))
        tensors[name] = array.reshape(entry["shape"])
    return tensors, metadata
