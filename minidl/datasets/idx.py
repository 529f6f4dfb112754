"""IDX files (the format of MNIST and Fashion-MNIST), plain or gzipped: a 4-byte magic (0, 0, type code, number
of dimensions), each dimension as a big-endian uint32, then the values in C order.

Headers are checked before any data are read: against the file's size (a plain file holds exactly its header
and the values it announces; a gzipped one cannot inflate to more than MAX_DEFLATE_RATIO times its size, the
limit of the deflate format), and by the caller against each other. Data are then read into an array of the
announced size, never more: a file that holds other than it announces is refused without inflating past it.
"""

import gzip
import math
import os
import struct
import zlib

import numpy

from minidl.errors import DataError

UNSIGNED_BYTE = 0x08
MAX_DEFLATE_RATIO = 1032  # deflate writes at least one bit per 258 bytes: no stream inflates further
CHUNK = 2**20  # bytes read per call while streaming the values


def findFile(folder, name):
    """``folder/name`` or ``folder/name.gz``, whichever exists (the plain one when both do)."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    raise DataError(f"missing file {os.path.join(folder, name)} (or {name}.gz)")


def _open(path):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")  # noqa: SIM115 -- callers close it


def readIdxHeader(path, ndim):
    """The shape announced by the IDX file ``path`` of ``ndim``-dimensional unsigned bytes, checked against the
    file's size; DataError naming the file otherwise. Reads the header only."""
    try:
        fileSize = os.path.getsize(path)
        with _open(path) as file:
            magic = file.read(4)
            if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] != UNSIGNED_BYTE or magic[3] != ndim:
                raise DataError(f"{path} is not an IDX file of {ndim}-dimensional unsigned bytes "
                                f"(magic {magic.hex() or 'missing'}, expected 0000{UNSIGNED_BYTE:02x}{ndim:02x})")
            header = file.read(4 * ndim)
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path} cannot be read: {error}") from error
    if len(header) < 4 * ndim:
        raise DataError(f"{path}: the IDX header ends before its {ndim} dimensions")
    shape = struct.unpack(f">{ndim}I", header)
    size = math.prod(shape)  # exact: no product of the sizes wraps around
    if path.endswith(".gz"):
        if 4 + 4 * ndim + size > MAX_DEFLATE_RATIO * fileSize:
            raise DataError(f"{path}: the header gives shape {shape} ({size} bytes of data), more than a gzip file "
                            f"of {fileSize} bytes can hold")
    elif 4 + 4 * ndim + size != fileSize:
        raise DataError(f"{path}: the header gives shape {shape} ({size} bytes of data), the file holds "
                        f"{fileSize - 4 - 4 * ndim}")
    return shape


def readIdx(path, ndim, shape=None):
    """The unsigned-byte array of ``ndim`` dimensions in the IDX file ``path`` (gzipped when it ends in .gz);
    ``shape``: the one ``readIdxHeader`` gave (read again when None).

    DataError naming the file when the header is not that of such an array or the data are not exactly as
    long as the header says; the header is checked before the data are read, and no more than the announced
    data are ever inflated.
    """
    if shape is None:
        shape = readIdxHeader(path, ndim)
    values = numpy.empty(math.prod(shape), dtype=numpy.uint8)
    view = memoryview(values)
    try:
        with _open(path) as file:
            file.seek(4 + 4 * ndim)
            done = 0
            while done < len(values):
                count = file.readinto(view[done:done + CHUNK])
                if not count:
                    break
                done += count
            extra = file.read(1)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} cannot be read: {error}") from error
    if done != len(values) or extra:
        raise DataError(f"{path}: the header gives shape {shape} ({len(values)} bytes of data), the file holds "
                        f"{'more' if extra else done}")
    return values.reshape(shape)
