"""IDX files (the format of MNIST and Fashion-MNIST), plain or gzipped: a 4-byte magic (0, 0, type code, number
of dimensions), each dimension as a big-endian uint32, then the values in C order."""

import gzip
import os
import struct
import zlib

import numpy

from minidl.errors import DataError

UNSIGNED_BYTE = 0x08


def findFile(folder, name):
    """``folder/name`` or ``folder/name.gz``, whichever exists (the plain one when both do)."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    raise DataError(f"missing file {os.path.join(folder, name)} (or {name}.gz)")


def readIdx(path, ndim):
    """The unsigned-byte array of ``ndim`` dimensions in the IDX file ``path`` (gzipped when it ends in .gz).

    DataError naming the file when the header is not that of such an array or the data are not exactly as
    long as the header says; the header is checked before the data are read.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as file:
            magic = file.read(4)
            if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] != UNSIGNED_BYTE or magic[3] != ndim:
                raise DataError(f"{path} is not an IDX file of {ndim}-dimensional unsigned bytes "
                                f"(magic {magic.hex() or 'missing'}, expected 0000{UNSIGNED_BYTE:02x}{ndim:02x})")
            header = file.read(4 * ndim)
            if len(header) < 4 * ndim:
                raise DataError(f"{path}: the IDX header ends before its {ndim} dimensions")
            shape = struct.unpack(f">{ndim}I", header)
            size = int(numpy.prod(shape))
            values = file.read(size + 1)
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path} cannot be read: {error}") from error
    if len(values) != size:
        raise DataError(f"{path}: the header gives shape {shape} ({size} bytes of data), the file holds "
                        f"{'more' if len(values) > size else len(values)}")
    return numpy.frombuffer(values, dtype=numpy.uint8).reshape(shape)
