"""``minidl verify RUN_A RUN_B [--bisect]``: are two runs of ``minidl train`` (their --out folders) the same run?

Compares the runs' manifests and parameter digests (``minidl.train.compare``): prints "bit-identical" and exits 0,
or prints what differs in the manifests and the first logged step where the digests part, and exits 1. With
``--bisect`` it also replays both runs from their last common kept checkpoint (``minidl.train.bisect``, the runs
rebuilt by ``minidl.cli.rebuild``) and names the first step, Variable and module that differ. A folder that is no
run, or runs that cannot be replayed, exit 2 with the reason.
"""

import sys

from minidl.errors import MinidlError
from minidl.train.bisect import bisectRuns
from minidl.train.compare import compareRuns, readRun


def addArguments(parser):
    parser.add_argument("runA", metavar="RUN_A", help="a run's folder (minidl train --out)")
    parser.add_argument("runB", metavar="RUN_B", help="the other run's folder")
    parser.add_argument("--bisect", action="store_true",
                        help="replay both runs from their last common checkpoint (OUT/checkpoints) with a digest "
                             "after every step: name the first step, Variable and module that differ")
    parser.set_defaults(run=run)


def run(args, argv):
    try:
        if args.bisect:
            from minidl.cli.rebuild import readSettings, rebuildRun

            for folder in (args.runA, args.runB):  # a run that cannot be replayed is refused before any replay
                readRun(folder)
                readSettings(folder)
            result = bisectRuns(args.runA, args.runB, rebuildRun)
        else:
            result = compareRuns(args.runA, args.runB)
    except MinidlError as error:
        print(f"minidl: error: {error}", file=sys.stderr)
        return 2
    for line in result.lines():
        print(line)
    return 0 if result.identical else 1
