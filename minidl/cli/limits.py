"""Caps on the work of ``minidl train`` from the environment, for a quick replay of documented command lines
(tests/test_readme.py runs the README's lines as they are written, with these set):

- ``MINIDL_MAX_EPOCHS=N``: at most N epochs (``--epochs`` and the task's default above it are lowered to N);
- ``MINIDL_MAX_SAMPLES=N``: the first N training and N validation samples of the data set (the text task: at most
  N windows per epoch).

Each cap in effect is said in one line on stderr, so a capped run never passes for a full one. An empty or unset
variable caps nothing; anything but a positive integer is an error before anything runs.
"""

import os
import sys

from minidl.errors import DataError


def readLimit(name):
    """The positive integer of environment variable ``name``, or None when it is unset or empty."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise DataError(f"{name} must be a positive integer (or unset), got {text!r}")
    return int(text)


def capEpochs(epochs):
    """``epochs``, lowered to MINIDL_MAX_EPOCHS when that is set and smaller (said on stderr)."""
    limit = readLimit("MINIDL_MAX_EPOCHS")
    if limit is None or epochs <= limit:
        return epochs
    print(f"minidl: MINIDL_MAX_EPOCHS={limit}: {limit} of the {epochs} epochs", file=sys.stderr, flush=True)
    return limit


def capSamples(count, what):
    """``count`` (of ``what``: "training samples", "windows", ...) lowered to MINIDL_MAX_SAMPLES when that is set
    and smaller (said on stderr)."""
    limit = readLimit("MINIDL_MAX_SAMPLES")
    if limit is None or count <= limit:
        return count
    print(f"minidl: MINIDL_MAX_SAMPLES={limit}: {limit} of the {count} {what}", file=sys.stderr, flush=True)
    return limit
