"""Parameter digests: a fingerprint of an optimizer's parameters and state, computed on the device.

One hashing kernel (``digestKer``) per dtype group folds every buffer of the group (the parameters, the float32
masters, the state arrays by name) into ``LANES`` 64-bit lanes: lane ``j`` reads the buffer's words
``j, j + LANES, j + 2·LANES, ...`` in that order, each step

    h ← h xor w;   h ← h · 0x9E3779B97F4A7C15 (mod 2⁶⁴);   h ← h xor (h >> 29)

where ``w`` is the word's bits (a float16 as 16 bits, a float32 as 32, a float64 as 64; no arithmetic on the
values, so NaNs and signed zeros count as their bits). Each step is a bijection of ``h`` for a given ``w`` and
of ``w`` for a given ``h``: two buffers that differ in any one word give different lanes, with certainty. The
order is fixed, no atomics: the same bits give the same lanes on every device and path. Only the lanes cross to
the host (8 KiB per group), where SHA-256 of the lanes and the buffers' sizes gives the group's hex digest.
"""

import hashlib

import numpy

from minidl.backend import Elementwise, toHost, xp
from minidl.errors import OptimizerError

LANES = 1024
MULTIPLIER = 0x9E3779B97F4A7C15
WORDS = {2: numpy.uint16, 4: numpy.uint32, 8: numpy.uint64}


def digestNumpy(words, count, lanes, digest):
    """The reference: the same fold, a row of ``lanes`` words at a time (uint64 arithmetic wraps mod 2⁶⁴)."""
    count, lanes = int(count), int(lanes)
    for start in range(0, count, lanes):
        row = words[start:min(start + lanes, count)].astype(numpy.uint64)
        lane = digest[:row.size]
        lane ^= row
        lane *= numpy.uint64(MULTIPLIER)
        lane ^= lane >> numpy.uint64(29)


digestKer = Elementwise(
    "minidl_digest",
    "raw W words, int64 count, int64 lanes",
    "raw uint64 digest",
    "unsigned long long h = digest[i]; "
    "for (long long k = i; k < count; k += lanes) { "
    "  h ^= (unsigned long long)words[k]; h *= 0x9E3779B97F4A7C15ULL; h ^= h >> 29; } "
    "digest[i] = h;",
    reference=digestNumpy,
    grain="count / lanes",
)


def groupBuffers(group):
    """A state group's buffers in their fixed order: parameters, masters (when there are), state by name."""
    buffers = [("param", group.param)]
    if group.master is not None:
        buffers.append(("master", group.master))
    return buffers + [(name, group.state[name]) for name in sorted(group.state)]


def foldBuffer(array, lanes):
    """Fold one contiguous buffer's words into ``lanes`` (a device uint64 array of LANES) in place."""
    if not array.flags.c_contiguous:
        raise OptimizerError(f"a digest reads contiguous buffers, got one of shape {array.shape} that is not")
    words = array.reshape(-1).view(WORDS[array.dtype.itemsize])
    digestKer(words, words.size, LANES, lanes, size=LANES)


def parameterDigests(optimizer):
    """{dtype name: hex digest} over ``optimizer``'s parameters, masters and state, one fold per dtype group (the
    group's dtype is its parameters'); with local state, the Variables' groups of one dtype fold into one digest
    in the optimizer's order."""
    if optimizer.module is None:
        raise OptimizerError("parameterDigests needs an optimizer after setupOn(module)")
    folds = {}
    for group in optimizer.groups:
        name = group.param.dtype.name
        if name not in folds:
            folds[name] = (xp.zeros(LANES, dtype=numpy.uint64), hashlib.sha256())
        lanes, sizes = folds[name]
        for buffer, array in groupBuffers(group):
            foldBuffer(array, lanes)
            sizes.update(f"{buffer}:{array.dtype.name}:{array.size};".encode())
    digests = {}
    for name, (lanes, sizes) in sorted(folds.items()):
        sizes.update(toHost(lanes).astype("<u8").tobytes())
        digests[name] = sizes.hexdigest()[:32]
    return digests
