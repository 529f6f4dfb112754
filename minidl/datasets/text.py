"""Character-level text for language models: a corpus (a file, or by default a fixed set of source files of
the Python standard library, real text that ships with every Python), its vocabulary of characters, a
held-out tail, and windows sampled from either part.

A window of ``length`` characters starting at s gives inputs codes[s : s + length] and targets
codes[s + 1 : s + length + 1]: each step predicts the next character.
"""

import os
import sysconfig

import numpy

from minidl.errors import DataError

STDLIB_FILES = ("textwrap.py", "string.py", "functools.py", "fractions.py", "heapq.py", "bisect.py",
                "colorsys.py", "shlex.py", "queue.py", "random.py", "calendar.py")
HELD_OUT = 0.1  # the last tenth of the text is held out


def stdlibText():
    """The default corpus: STDLIB_FILES of this Python's standard library, concatenated (about 200 kB)."""
    folder = sysconfig.get_paths()["stdlib"]
    parts = []
    for name in STDLIB_FILES:
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="utf-8") as file:
                parts.append(file.read())
        except OSError as error:
            raise DataError(f"the default text needs {path} of the standard library: {error}; "
                            f"pass --text FILE") from error
    return "\n".join(parts)


class CharCodec:
    """``CharCodec(vocabulary)``: characters to int32 codes (their index in ``vocabulary``) and back."""

    def __init__(self, vocabulary):
        self.vocabulary = list(vocabulary)

    def encode(self, text):
        index = {char: code for code, char in enumerate(self.vocabulary)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise DataError(f"characters outside the vocabulary: {''.join(unknown)[:20]!r}")
        return numpy.array([index[char] for char in text], dtype=numpy.int32)

    def decode(self, codes):
        return "".join(self.vocabulary[int(code)] for code in codes)


class CharCorpus(CharCodec):
    """``CharCorpus(text)``: the codec of its sorted distinct characters, ``train`` and ``heldOut`` as int32
    code arrays (the held-out part is the text's last tenth)."""

    def __init__(self, text):
        if not isinstance(text, str) or len(text) < 20:
            got = f"{len(text)} characters" if isinstance(text, str) else type(text).__name__
            raise DataError(f"a text corpus needs at least 20 characters, got {got}")
        super().__init__(sorted(set(text)))
        codes = self.encode(text)
        split = int(len(codes) * (1 - HELD_OUT))
        self.train, self.heldOut = codes[:split], codes[split:]

    @classmethod
    def fromFile(cls, path):
        try:
            with open(path, encoding="utf-8") as file:
                return cls(file.read())
        except (OSError, UnicodeDecodeError) as error:
            raise DataError(f"cannot read the text {path}: {error}") from error


def windows(codes, starts, length):
    """Inputs and targets of the windows starting at ``starts``, each of shape (length, len(starts)): the
    (time, batch) layout of sequence models."""
    starts = numpy.asarray(starts)
    if len(codes) < length + 1 or starts.min() < 0 or starts.max() > len(codes) - length - 1:
        raise DataError(f"windows of {length} characters need starts in [0, {len(codes) - length - 1}]")
    block = codes[starts[None, :] + numpy.arange(length + 1)[:, None]]
    return numpy.ascontiguousarray(block[:-1]), numpy.ascontiguousarray(block[1:])


def randomWindows(codes, count, length, rng):
    """``count`` windows at uniformly drawn starts."""
    return windows(codes, rng.integers(0, len(codes) - length, count), length)


def evenWindows(codes, count, length):
    """``count`` windows at evenly spaced starts (a fixed evaluation set)."""
    return windows(codes, numpy.linspace(0, len(codes) - length - 1, count).astype(numpy.int64), length)
