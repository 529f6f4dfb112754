"""``python -m minidl`` (and the ``minidl`` command): the command line, with the backend chosen first.

The backend is chosen when minidl.backend is first imported, so ``--device`` is read before that and passed on as
``MINIDL_BACKEND``: ``--device gpu`` then fails at once with the probe's reason, ``--device cpu`` skips the probe.
``minidl profile`` always runs on the simulated device.
"""

import argparse
import os
import sys

# minidl.cli.train.DEVICES, which cannot be imported before the choice
DEVICES = {"cpu": "numpy", "gpu": "cupy", "simulated": "simulated"}


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
    device = "simulated" if argv[:1] == ["profile"] else askedDevice(argv)
    if device is not None:
        os.environ["MINIDL_BACKEND"] = DEVICES[device]
    from minidl.cli import main  # which reports a device that cannot be had in one line

    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
