"""The ``minidl`` command (also ``python -m minidl``): ``minidl train|sample|export|profile|verify [options]``."""

import argparse
import sys

from minidl.errors import MinidlError


def buildParser():
    """The command's parser. Importing the commands imports the backend, which may refuse a forced device."""
    from minidl.cli import export, profile, train, verify
    from minidl.cli.texttask import addSampleArguments

    parser = argparse.ArgumentParser(prog="minidl", description="minidl: train small networks on CPU or GPU")
    commands = parser.add_subparsers(dest="command", required=True)
    train.addArguments(commands.add_parser("train", help="train a model on the handwritten digits"))
    addSampleArguments(commands.add_parser("sample", help="write text from a checkpoint of minidl train --task text"),
                       train.CHECKPOINT_NAME)
    export.addArguments(commands.add_parser("export", help="write a checkpoint as ONNX or a PyTorch state dict"))
    profile.addArguments(commands.add_parser("profile", help="count one training step on the simulated device and "
                                                              "predict its time on a GPU (a stated model)"))
    verify.addArguments(commands.add_parser("verify", help="say whether two runs are bit-identical, or where they "
                                                           "first part"))
    return parser


def main(argv=None):
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit status. A minidl error (a forced
    backend that cannot start included) is one line on stderr, not a traceback; so is Ctrl-C (status 130, once
    the command has stopped its worker processes)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = buildParser().parse_args(argv)
        return args.run(args, argv)
    except MinidlError as error:
        print(f"minidl: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("minidl: interrupted", file=sys.stderr)
        return 130
