"""``minidl verify RUN_A RUN_B [--bisect]``: are two runs of ``minidl train`` (their --out folders) the same run?

Compares the runs' manifests and parameter digests (``minidl.train.compare``): prints "bit-identical" and exits 0,
or prints what differs in the manifests and the first logged step where the digests part, and exits 1. With
``--bisect`` it also replays both runs from their last common kept checkpoint (``minidl.train.bisect``, the runs
rebuilt by ``minidl.cli.rebuild``) and names the first step, Variable and module that differ. A difference that is
in the code rather than in the runs' settings, data or checkpoints (one run made by a changed kernel or module) is
replayed with ``--prepare MODULE:FUNCTION``: ``FUNCTION(label, fit)`` (label "A" or "B") runs on each rebuilt run
before its replay and puts back what that run's code did differently. A folder that is no run, runs that cannot be
replayed, or a --prepare that cannot be imported exit 2 with the reason.
"""

import importlib
import sys

from minidl.errors import CheckpointError, MinidlError
from minidl.train.bisect import bisectRuns
from minidl.train.compare import compareRuns, readRun


def addArguments(parser):
    parser.add_argument("runA", metavar="RUN_A", help="a run's folder (minidl train --out)")
    parser.add_argument("runB", metavar="RUN_B", help="the other run's folder")
    parser.add_argument("--bisect", action="store_true",
                        help="replay both runs from their last common checkpoint (OUT/checkpoints) with a digest "
                             "after every step: name the first step, Variable and module that differ")
    parser.add_argument("--prepare", metavar="MODULE:FUNCTION",
                        help="with --bisect: FUNCTION(label, fit) of an importable MODULE runs on each rebuilt run "
                             "(label A or B) before its replay, to put back a difference in the code")
    parser.set_defaults(run=run)


def importPrepare(text):
    """The function ``MODULE:FUNCTION`` names; CheckpointError (exit 2) when it cannot be had."""
    moduleName, colon, functionName = text.partition(":")
    if not colon or not moduleName or not functionName.isidentifier():
        raise CheckpointError(f"--prepare takes MODULE:FUNCTION, got {text!r}")
    try:
        function = getattr(importlib.import_module(moduleName), functionName)
    except (ImportError, AttributeError) as error:
        raise CheckpointError(f"--prepare {text}: {error}") from error
    if not callable(function):
        raise CheckpointError(f"--prepare {text}: {functionName} is not a function")
    return function


def run(args, argv):
    try:
        if args.prepare is not None and not args.bisect:
            raise CheckpointError("--prepare is for --bisect, which replays the runs")
        if args.bisect:
            from minidl.cli.rebuild import readSettings, rebuildRun

            prepare = None if args.prepare is None else importPrepare(args.prepare)
            for folder in (args.runA, args.runB):  # a run that cannot be replayed is refused before any replay
                readRun(folder)
                readSettings(folder)
            result = bisectRuns(args.runA, args.runB, rebuildRun, prepare)
        else:
            result = compareRuns(args.runA, args.runB)
    except MinidlError as error:
        print(f"minidl: error: {error}", file=sys.stderr)
        return 2
    for line in result.lines():
        print(line)
    return 0 if result.identical else 1
