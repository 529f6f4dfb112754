"""Tensor files: named host arrays plus string metadata in the safetensors format, written atomically.

Any safetensors reader opens them (``safetensors.numpy.load_file``, ``safetensors.torch.load_file``, ...).
minidl adds two metadata entries: ``format`` names the writer ("minidl.module", "minidl.optimizer",
"minidl.checkpoint") so that a foreign file is refused, and ``crc32`` checks the other metadata entries and
the tensors' names, dtypes, shapes and bytes, so that a damaged file is refused rather than loaded with wrong
values or a wrong epoch.

Reading checks before it reads: the header alone (the 8-byte length, then the JSON) gives the format, the
tensors' names, dtypes, shapes and offsets, and these are compared with what the caller expects before any
tensor byte is read, so a wrong file costs no more memory than its header. Every problem while reading is a
CheckpointError naming the file and the cause.

A write goes through ``minidl.atomicfile.writeAtomically``: a crash or an exception mid-write leaves the
previous file in place, whole.
"""

import json
import os
import struct
import zlib

import numpy
import safetensors.numpy

from minidl.atomicfile import writeAtomically
from minidl.backend import xp
from minidl.errors import CheckpointError

DTYPES = {
    "F64": numpy.float64, "F32": numpy.float32, "F16": numpy.float16,
    "I64": numpy.int64, "I32": numpy.int32, "I16": numpy.int16, "I8": numpy.int8,
    "U64": numpy.uint64, "U32": numpy.uint32, "U16": numpy.uint16, "U8": numpy.uint8, "BOOL": numpy.bool_,
}
MAX_HEADER_BYTES = 100 * 2**20  # the limit of the safetensors library
MAX_INTEGER_DIGITS = 64  # a 128-bit random state has 39; longer integers are damage, not data


def checksum(metadata, tensors):
    """CRC-32 over the metadata entries (but ``crc32``) and the tensors' names, dtypes, shapes and bytes, each in
    name order, as a decimal string."""
    crc = 0
    for key in sorted(metadata):
        if key != "crc32":
            crc = zlib.crc32(json.dumps([key, metadata[key]]).encode(), crc)
    for name in sorted(tensors):
        array = numpy.asarray(tensors[name], order="C")
        crc = zlib.crc32(f"{name}:{array.dtype.str}:{array.shape};".encode(), crc)
        crc = zlib.crc32(array.reshape(-1).view(numpy.uint8), crc)
    return str(crc)


def parseJson(text, path, what):
    """The JSON value of ``text``; CheckpointError naming ``path`` and ``what`` when it is not valid JSON, nests
    too deep or holds an integer of more than MAX_INTEGER_DIGITS digits."""

    def integer(digits):
        if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
            raise ValueError(f"an integer of {len(digits)} digits")
        return int(digits)

    try:
        return json.loads(text, parse_int=integer, object_pairs_hook=_uniqueKeys)
    except (ValueError, RecursionError, TypeError) as error:
        cause = "it nests too deep" if isinstance(error, RecursionError) else error
        raise CheckpointError(f"{path}: the {what} is not readable JSON: {cause}") from None


def _uniqueKeys(pairs):
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key appears twice")
    return result


# writing


def writeTensors(path, tensors, metadata):
    """Write host arrays ``tensors`` (name -> numpy array) and ``metadata`` (str -> str) to ``path`` atomically
    (``minidl.atomicfile``)."""
    tensors = {name: numpy.asarray(array, order="C") for name, array in tensors.items()}
    payload = safetensors.numpy.save(tensors, metadata={**metadata, "crc32": checksum(metadata, tensors)})
    writeAtomically(path, payload, CheckpointError)


# reading


class TensorFile:
    """An open tensor file whose header is read and checked: ``metadata`` (str -> str, not yet verified by the
    checksum) and ``entries`` (name -> (dtype, shape, begin, end)); ``read(expected)`` reads the tensors.
    ``fileFormat`` None opens any safetensors file (a foreign one too: its checksum is verified when it has one).

    Use it as a context manager: ``with TensorFile(path, "minidl.module") as file: tensors = file.read(...)``;
    ``fileFormat`` may be a tuple of the formats the caller reads.
    """

    def __init__(self, path, fileFormat):
        self.path = os.fspath(path)
        self.file = _open(self.path)
        try:
            self._readHeader(fileFormat)
        except BaseException:
            self.file.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.file.close()

    def _damaged(self, cause):
        return CheckpointError(f"{self.path} is not a readable safetensors file (truncated or damaged?): {cause}")

    def _readHeader(self, fileFormat):
        size = _osCall(self.path, lambda: os.fstat(self.file.fileno()).st_size)
        prefix = _osCall(self.path, lambda: self.file.read(8))
        if len(prefix) < 8:
            raise self._damaged(f"{size} bytes, shorter than the 8-byte header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(size - 8, MAX_HEADER_BYTES) or length < 2:
            raise self._damaged(f"a header length of {length} bytes in a file of {size} bytes")
        raw = _osCall(self.path, lambda: self.file.read(length))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise self._damaged(f"the header is not UTF-8 ({error})") from None
        header = parseJson(text, self.path, "header")
        if not isinstance(header, dict):
            raise self._damaged("the header is not a JSON object")
        metadata = header.pop("__metadata__", {})
        if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
            raise self._damaged("the metadata is not a table of strings")
        formats = (fileFormat,) if isinstance(fileFormat, str) else tuple(fileFormat or ())
        if fileFormat is not None and metadata.get("format") not in formats:
            raise CheckpointError(f"{self.path} is not a {' or '.join(formats)} file: its metadata format is "
                                  f"{metadata.get('format')!r:.100}")
        self.metadata = metadata
        self.verified = fileFormat is not None or "crc32" in metadata
        self.entries = {name: self._entry(name, value) for name, value in header.items()}
        self.dataStart = 8 + length
        covered = 0
        for _, _, begin, end in sorted(self.entries.values(), key=lambda entry: (entry[2], entry[3])):
            if begin != covered:
                raise self._damaged(f"the tensors' byte ranges leave a gap or overlap at byte {covered}")
            covered = end
        if self.dataStart + covered != size:
            raise self._damaged(f"the tensors need {self.dataStart + covered} bytes, the file has {size}")

    def _entry(self, name, value):
        """(dtype, shape, begin, end) of one header entry, checked for consistency."""
        if not isinstance(value, dict) or set(value) != {"dtype", "shape", "data_offsets"}:
            raise self._damaged(f"tensor {name!r:.100} has no dtype, shape and data_offsets")
        dtype, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
        if dtype not in DTYPES:
            raise CheckpointError(f"{self.path}: tensor {name!r:.100} has a dtype {dtype!r:.20} minidl does not read "
                                  f"(it reads {', '.join(DTYPES)})")
        if not (isinstance(shape, list) and all(_isCount(dim) for dim in shape)
                and isinstance(offsets, list) and len(offsets) == 2 and all(_isCount(at) for at in offsets)):
            raise self._damaged(f"tensor {name!r:.100} has a shape or offsets that are not non-negative integers")
        dtype, shape = numpy.dtype(DTYPES[dtype]), tuple(shape)
        begin, end = offsets
        if end - begin != dtype.itemsize * int(numpy.prod(shape, dtype=object)):
            raise self._damaged(f"tensor {name!r:.100} of {dtype} {shape} spans {end - begin} bytes")
        return dtype, shape, begin, end

    def check(self, expected, prefix=""):
        """CheckpointError unless the header's names that start with ``prefix`` (all by default) are exactly the
        names of ``expected`` (name -> array), with their shapes and dtypes. Reads nothing."""
        missing = [name for name in expected if name not in self.entries]
        unexpected = [name for name in self.entries if name.startswith(prefix) and name not in expected]
        if missing or unexpected:
            raise CheckpointError(
                f"{self.path} does not match: missing tensors {missing[:8]}, unexpected tensors {unexpected[:8]}"
            )
        for name, array in expected.items():
            dtype, shape, _, _ = self.entries[name]
            if shape != tuple(array.shape) or dtype != numpy.dtype(array.dtype):
                raise CheckpointError(
                    f"{self.path}: tensor {name!r} is {dtype} {shape}, expected {array.dtype} {tuple(array.shape)}"
                )

    def read(self, expected=None, prefix=""):
        """Every tensor of the file (name -> host array), once ``check(expected, prefix)`` passes (when
        ``expected`` is given); CheckpointError unless the checksum matches the metadata and the tensors read."""
        if expected is not None:
            self.check(expected, prefix)
        tensors = {}
        for name, (dtype, shape, begin, end) in self.entries.items():
            array = numpy.empty(shape, dtype.newbyteorder("<"))
            if _osCall(self.path, self._readInto, begin, array) != end - begin:
                raise self._damaged(f"tensor {name!r} is cut short")
            tensors[name] = array.astype(dtype, copy=False)
        if self.verified and self.metadata.get("crc32") != checksum(self.metadata, tensors):
            if self.metadata.get("crc32") == checksum({}, tensors):
                raise CheckpointError(f"{self.path} was written by an older minidl, whose checksum left out the "
                                      "metadata: its epoch and settings cannot be trusted; load it with that "
                                      "version and save it again, or start over")
            raise CheckpointError(f"{self.path} is damaged: its metadata and tensors do not match the checksum "
                                  "written with them")
        return tensors

    def _readInto(self, begin, array):
        """Read the bytes of ``array`` from data offset ``begin``; returns how many were read."""
        self.file.seek(self.dataStart + begin)
        return self.file.readinto(memoryview(array.reshape(-1).view(numpy.uint8)))


def _isCount(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _open(path):
    """The file open for reading; CheckpointError naming the cause (missing, permission denied, a folder...)."""
    try:
        return open(path, "rb")  # noqa: SIM115 -- closed by TensorFile
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint file at {path}") from None
    except PermissionError as error:
        raise CheckpointError(f"cannot read {path}: permission denied ({error.strerror})") from None
    except IsADirectoryError:
        raise CheckpointError(f"cannot read {path}: it is a folder, not a file") from None
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error}") from None


def _osCall(path, call, *args):
    """``call(*args)``, an OSError becoming a CheckpointError that names ``path``."""
    try:
        return call(*args)
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error}") from None


def readTensors(path, fileFormat, expected=None):
    """``(tensors, metadata)`` of a file written with ``metadata["format"] == fileFormat`` whose tensors have
    exactly the names, shapes and dtypes of ``expected`` (name -> array; None takes whatever the file holds).
    CheckpointError otherwise, or when the file is missing, unreadable, not a safetensors file, truncated or
    damaged."""
    with TensorFile(path, fileFormat) as file:
        return file.read(expected), file.metadata


def copyTensors(targets, tensors):
    """Copy host arrays into the device arrays ``targets`` (name -> array) in place, keeping views valid."""
    for name, target in targets.items():
        target[...] = xp.asarray(tensors[name])


def copyTensorsAfter(path, first, errors, targets, tensors):
    """Run ``first()`` (the checks, or settings, that must succeed before a file's tensors are used), then
    copyTensors. An error of the types ``errors`` from ``first`` becomes a CheckpointError naming ``path``, with
    every target unchanged."""
    try:
        first()
    except errors as error:
        raise CheckpointError(f"{path}: {error}") from error
    copyTensors(targets, tensors)
