"""``minidl verify RUN_A RUN_B``: are two runs of ``minidl train`` (their --out folders) the same run?

Compares the runs' manifests and parameter digests (``minidl.train.compare``): prints "bit-identical" and exits 0,
or prints what differs in the manifests and the first logged step where the digests part, and exits 1.
"""

from minidl.train.compare import compareRuns


def addArguments(parser):
    parser.add_argument("runA", metavar="RUN_A", help="a run's folder (minidl train --out)")
    parser.add_argument("runB", metavar="RUN_B", help="the other run's folder")
    parser.set_defaults(run=run)


def run(args, argv):
    comparison = compareRuns(args.runA, args.runB)
    for line in comparison.lines():
        print(line)
    return 0 if comparison.identical else 1
