"""``python -m minidl`` (and the ``minidl`` command): the command line, with the backend chosen first.

The backend is chosen when minidl is imported, so ``--device`` is read before that and passed on as
``MINIDL_BACKEND``: ``--device gpu`` then fails at once with the probe's reason, ``--device cpu`` skips the probe.
A minidl error, one raised while importing included, is printed as one line, without a traceback.
"""

import argparse
import os
import sys

from minidl.errors import MinidlError

DEVICES = {"cpu": "numpy", "gpu": "cupy"}  # minidl.cli.train.DEVICES, which cannot be imported before the choice


def askedDevice(argv):
    """The ``--device`` of a ``train`` command line, read as argparse reads it; None when absent or invalid."""
    if not argv or argv[0] != "train":
        return None
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("--device", choices=sorted(DEVICES))
    try:
        return parser.parse_known_args(argv[1:])[0].device
    except (argparse.ArgumentError, SystemExit):  # the full parser reports it
        return None


def run(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    device = askedDevice(argv)
    if device is not None:
        os.environ["MINIDL_BACKEND"] = DEVICES[device]
    try:
        from minidl.cli import main
    except MinidlError as error:  # the backend asked for cannot be had
        print(f"minidl: error: {error}", file=sys.stderr)
        return 1
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
