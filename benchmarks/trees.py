"""Rows of ``benchmarks.conv`` timed in several source trees of minidl in ONE process, alternating: ms per forward +
backward, so that a before/after comparison on a shared machine puts its load on every tree alike.

    python -m benchmarks.trees TREE,TREE[,...] [--rows "LeNet conv2 5x5;Pad2D reflect 2"] [--rounds 7] [--calls 100]

A tree is a checkout of minidl (``git worktree add /tmp/before b27826c``). Each is imported in turn as ``minidl``
(the modules of the one before are put aside first, and keep working: the layers built from them hold them) and
builds each row's module with its own ``benchmarks.conv``, so a row is the same layer in every tree. Then each
round times every row in every tree, ``--calls`` calls each; a row prints, per tree, the median of the rounds'
medians and the best call. Compiled kernels of different trees are libraries of their own (their sources differ,
or they are one library). Under load set OMP_NUM_THREADS=1: a parallel loop whose second thread waits for a busy
core measures the machine, not the code.
"""

import argparse
import importlib
import os
import statistics
import sys
import time

import numpy


def importTree(tree):
    """``benchmarks.conv`` and ``minidl.backend`` as the checkout ``tree`` has them."""
    for name in [name for name in sys.modules if name.split(".")[0] in ("minidl", "benchmarks")]:
        del sys.modules[name]
    sys.path.insert(0, tree)
    try:
        conv = importlib.import_module("benchmarks.conv")
        backend = importlib.import_module("minidl.backend")
    finally:
        sys.path.remove(tree)
    if not conv.__file__.startswith(os.path.abspath(tree)):
        raise SystemExit(f"{tree} is not a checkout of minidl with benchmarks/conv.py (imported {conv.__file__})")
    return conv, backend


def layerStep(conv, backend, rowName):
    """A forward + backward of the row named ``rowName`` of ``conv`` (a tree's benchmarks.conv), as conv times it."""
    backend.seed(0)
    for row in conv.SHAPES:
        if row[0] == rowName:
            shape, module = row[1], conv.makeConv(*row[1:])
            break
    else:
        family = {row[0]: row for row in conv.FAMILY}
        if rowName not in family:
            raise SystemExit(f"no row {rowName!r} in {conv.__file__}")
        shape, module = family[rowName][1], family[rowName][2]()
    data = backend.toDevice(numpy.random.default_rng(0).standard_normal(shape), dtype=numpy.float32)
    grad = backend.xp.ones_like(module(data))

    def step():
        module(data)
        module.backward(grad)
        backend.synchronize()

    return step


def timeCalls(step, calls):
    """(median, best) seconds of ``calls`` calls of ``step``."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", help="checkouts of minidl, separated by commas")
    parser.add_argument("--rows", default="LeNet conv2 5x5", help="rows of benchmarks.conv, separated by ;")
    parser.add_argument("--rounds", type=int, default=7, help="rounds, each timing every row in every tree")
    parser.add_argument("--calls", type=int, default=100, help="timed calls per row, tree and round")
    args = parser.parse_args()
    trees, rows = args.trees.split(","), args.rows.split(";")
    steps = {}
    for tree in trees:
        conv, backend = importTree(tree)
        for row in rows:
            steps[row, tree] = layerStep(conv, backend, row)
            for _ in range(5):
                steps[row, tree]()
    results = {key: [] for key in steps}
    for _ in range(args.rounds):
        for key, step in steps.items():
            results[key].append(timeCalls(step, args.calls))
    print(f"# {args.rounds} rounds of {args.calls} calls, alternating in one process; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; load average {os.getloadavg()[0]:.1f} at the end\n")
    print(f"| row | tree | ms, median of the rounds' medians | best ms | median / {trees[0]}'s |")
    print("|---|---|---:|---:|---:|")
    for row in rows:
        first = statistics.median(m for m, _ in results[row, trees[0]])
        for tree in trees:
            median = statistics.median(m for m, _ in results[row, tree])
            print(f"| {row} | {tree} | {median * 1e3:.3f} | {min(b for _, b in results[row, tree]) * 1e3:.3f} "
                  f"| {median / first:.2f} |")


if __name__ == "__main__":
    main()
