"""AdaGrad's step: minidl's fused in-place kernel against the naive NumPy way, and global against local
state, on whatever device the backend picked.

    python -m benchmarks.optimizer_step [--size 10000000]

Memory-bound: a step reads param, grad and h and writes param and h, 20 bytes per float32 parameter,
so GB/s is compared with the copy bandwidth measured in the same run.
"""

import argparse

import numpy

from benchmarks.timing import copyBandwidth, machine, medianSeconds
from minidl import backend
from minidl.nn import Linear, Module, Sequential
from minidl.optim import AdaGrad
from minidl.variable import Variable

BYTES_PER_PARAM = 20


def flatModel(size):
    """A module holding one Variable of ``size`` parameters (the whole model, as global state sees it)."""
    model = Module()
    model.setVar("w", Variable(backend.toDevice(backend.generator().standard_normal(size), dtype=numpy.float32)))
    return model


def naiveAdagrad(param, grad, h, learnRate, epsilon):
    """The way one writes it without thinking of memory: four temporaries per step."""
    h += grad * grad
    param -= learnRate * grad / (backend.xp.sqrt(h) + epsilon)


def fusedRow(size):
    model = flatModel(size)
    optimizer = AdaGrad(learnRate=1e-3).setupOn(model, useGlobalState=True)
    model.vars["w"].grad[...] = backend.toDevice(backend.generator().standard_normal(size), dtype=numpy.float32)
    fused = medianSeconds(optimizer.update)
    group = optimizer.groups[0]
    h = backend.xp.zeros_like(group.param)
    naive = medianSeconds(lambda: naiveAdagrad(group.param, group.grad, h, 1e-3, 1e-8))
    return fused, naive


def localGlobalRows(variables=100, side=32):
    rows = {}
    for useGlobalState in (True, False):
        net = Sequential().extend([Linear(side, side) for _ in range(variables // 2)])
        optimizer = AdaGrad(learnRate=1e-3).setupOn(net, useGlobalState=useGlobalState)
        rows[useGlobalState] = medianSeconds(optimizer.update, repeats=50)
    return rows, net.numOfParams()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000, help="parameters in the flat model")
    args = parser.parse_args()

    backend.seed(0)
    bandwidth = copyBandwidth(args.size)
    fused, naive = fusedRow(args.size)
    print(f"# {machine()}; copy bandwidth {bandwidth:.1f} GB/s")
    print(f"\nAdaGrad step, {args.size:,} float32 parameters, global state ({BYTES_PER_PARAM} bytes/parameter)\n")
    print("| way | ms/step | GB/s | of copy bandwidth | speed-up over naive |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in (("minidl fused kernel", fused), ("naive NumPy-style (temporaries)", naive)):
        rate = BYTES_PER_PARAM * args.size / seconds / 1e9
        print(f"| {name} | {seconds * 1e3:.2f} | {rate:.1f} | {rate / bandwidth:.0%} | {naive / seconds:.2f}x |")

    rows, params = localGlobalRows()
    print(f"\nAdaGrad step, 100 variables (50 x Linear(32, 32)), {params:,} parameters\n")
    print("| state | ms/step | speed-up over local |")
    print("|---|---:|---:|")
    for useGlobalState, label in ((True, "global (one launch)"), (False, "local (one launch per variable)")):
        seconds = rows[useGlobalState]
        print(f"| {label} | {seconds * 1e3:.3f} | {rows[False] / seconds:.1f}x |")


if __name__ == "__main__":
    main()
