"""A training step of each layer of ``benchmarks.sequence`` (forward, mean squared error against a target,
backward, an SGD update): minidl's ordinary step, the same step captured and replayed (``minidl.capture``, as
Trainer runs it by default), and PyTorch's, each in a process of its own (``timing.runWorkers``), alternating for
``--rounds`` rounds of ``--repeats`` timed repeats of ``--steps`` steps; a row gives the median and the best repeat.
``benchmarks.sequence`` times the layer's forward and backward alone, in one process.

    python -m benchmarks.sequence_step [--steps 10] [--repeats 5] [--rounds 2] [--layers "LSTM 1 layer, 128 hidden;..."]
"""

import argparse

import numpy

import minidl
from benchmarks.sequence import CASES, buildMinidl, buildTorch
from benchmarks.timing import machine, reportRepeats, runWorkers
from minidl import backend
from minidl.cost import MSE
from minidl.optim import SGD

LEARN_RATE = 1e-4
IMPLEMENTATIONS = ("minidl", "minidl, captured", "torch")


def minidlSteps(name, case):
    """A function running one step of minidl's layer, ordinary or captured."""
    _, kind, shape, option = case
    backend.seed(0)
    module = buildMinidl(kind, shape, option)
    optimizer = SGD(learnRate=LEARN_RATE).setupOn(module, useGlobalState=True)
    data, target = (backend.toDevice(backend.generator().standard_normal(shape), dtype=numpy.float32)
                    for _ in range(2))
    cost = MSE()
    if name == "minidl, captured":
        step = minidl.capture(module, cost, optimizer)
        for _ in range(6):  # a shape's first five steps record, compare and check (minidl.train.capturedstep)
            step(data, target)
        return lambda: step(data, target)

    def ordinary():
        optimizer.zeroGradParams()
        _, grad = cost(module(data), target)
        module.backward(grad)
        optimizer.update()

    return ordinary


def torchStep(case):
    import torch

    _, kind, shape, option = case
    module, forward = buildTorch(torch, kind, shape, option)
    optimizer = torch.optim.SGD(module.parameters(), lr=LEARN_RATE)
    data, target = torch.randn(shape), torch.randn(shape)

    def step():
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(forward(data), target).backward()
        optimizer.step()

    return step, {"version": torch.__version__, "threads": torch.get_num_threads()}


def worker(name, case, args):
    """Time ``args.repeats`` repeats of ``args.steps`` steps of one implementation (``timing.reportRepeats``)."""
    step, about = torchStep(case) if name == "torch" else (minidlSteps(name, case), {})

    def steps():
        for _ in range(args.steps):
            step()

    reportRepeats(steps, args.steps, args.repeats, about)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="processes per implementation and layer, alternating")
    parser.add_argument("--layers", default="LSTM 1 layer, 128 hidden;TransformerBlock 128 embed, 4 heads",
                        help="the layers of benchmarks.sequence to time, by name, ';' between")
    parser.add_argument("--worker", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    cases = {case[0]: case for case in CASES}
    wanted = [name.strip() for name in args.layers.split(";") if name.strip()]
    unknown = [name for name in wanted if name not in cases]
    if unknown:
        raise SystemExit(f"unknown layers {unknown}; benchmarks.sequence has {list(cases)}")
    if args.worker:
        worker(args.worker, cases[wanted[0]], args)
        return
    try:
        import torch  # noqa: F401 (only whether it is there: it is timed in its own process)
        names = list(IMPLEMENTATIONS)
    except ImportError:
        names = list(IMPLEMENTATIONS[:2])
    if backend.isGpu:
        names = list(IMPLEMENTATIONS[:2])  # the comparison is with PyTorch's CPU layers
    print(f"# {machine()}; each implementation in its own process, {args.rounds} processes each, alternating, of "
          f"{args.repeats} repeats of {args.steps} steps; SGD, mean squared error, float32\n")
    print("| layer | minidl ms | minidl captured ms | PyTorch ms | captured / PyTorch | best: captured / PyTorch |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in wanted:
        workerArgs = ["--steps", str(args.steps), "--repeats", str(args.repeats), "--layers", name]
        results = runWorkers("benchmarks.sequence_step", names, args.rounds, workerArgs)
        seconds = {key: [value for run in runs for value in run["seconds"]] for key, runs in results.items()}
        median = {key: numpy.median(values) * 1e3 for key, values in seconds.items()}
        best = {key: min(values) * 1e3 for key, values in seconds.items()}
        torchText = f"{median['torch']:.2f}" if "torch" in median else "-"
        ratio = f"{median['minidl, captured'] / median['torch']:.2f}" if "torch" in median else "-"
        bestRatio = f"{best['minidl, captured'] / best['torch']:.2f}" if "torch" in best else "-"
        print(f"| {name} | {median['minidl']:.2f} | {median['minidl, captured']:.2f} | {torchText} | {ratio} "
              f"| {bestRatio} |")


if __name__ == "__main__":
    main()
