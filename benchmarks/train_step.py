"""Time per training step of the digits MLP (64-256-256-10, ReLU, CrossEntropy, AdaGrad, batch 128).

Rows: minidl's step written out (forward, cost, zeroGradParams, backward, update on device batches), the same
step captured and replayed (``minidl.capture``), minidl's Trainer.trainFromHost over the digits training set
(shuffling and host-to-device copies included; its steps captured), and the same network in PyTorch
(nn.Sequential, CrossEntropyLoss, optim.Adagrad) when torch is importable, on the same device kind.
Each framework runs in a process of its own (``timing.runWorkers``; in one process each slows the other: PyTorch's step
there took 1.27 ms while minidl's NumPy products left OpenBLAS's threads spinning, 0.89 ms once they no longer did),
``--rounds`` processes each, alternating; minidl's rows alternate within each repeat, and the median repeat counts,
so a shared machine disturbs the ratios less. Before timing, both frameworks train from the same weights for a few
steps and must agree, so the rows time the same computation.

    python -m benchmarks.train_step [--steps 200] [--repeats 7] [--rounds 2]
"""

import argparse
import json
import time

import numpy

import minidl
from benchmarks.timing import machine, runWorkers
from minidl import backend
from minidl.cost import CrossEntropy
from minidl.datasets import loadDigits
from minidl.models import mlp
from minidl.optim import AdaGrad
from minidl.train import Trainer

BATCH = 128
LEARN_RATE = 0.01
EPSILON = 1e-8


def minidlSetup():
    backend.seed(0)
    net = mlp((64,), 10)
    optimizer = AdaGrad(learnRate=LEARN_RATE, epsilon=EPSILON).setupOn(net, useGlobalState=True)
    return net, optimizer


def hostBatches(digits):
    """The full batches of the digits training set, as host arrays (data, labels)."""
    return [(digits.trainData[start:start + BATCH], digits.trainLabels[start:start + BATCH])
            for start in range(0, len(digits.trainData) - BATCH + 1, BATCH)]


def minidlBatches(digits):
    return [(backend.toDevice(data), backend.toDevice(labels)) for data, labels in hostBatches(digits)]


def torchBatches(torch, digits, device):
    return [(torch.from_numpy(data).to(device), torch.from_numpy(labels.astype(numpy.int64)).to(device))
            for data, labels in hostBatches(digits)]


def minidlSteps(net, optimizer, batches, steps):
    cost = CrossEntropy()
    for step in range(steps):
        data, labels = batches[step % len(batches)]
        _, grad = cost(net(data), labels)
        optimizer.zeroGradParams()
        net.backward(grad, updGrad=False)
        optimizer.update()
    backend.synchronize()


def capturedSteps(step, batches, steps):
    for index in range(steps):
        step(*batches[index % len(batches)])
    backend.synchronize()


def torchSetup(torch, net, device):
    """The same network in PyTorch, starting from minidl's weights (W is (in, out), torch's weight (out, in))."""
    layers = []
    for module in net.modules:
        if hasattr(module, "vars") and "W" in module.vars:
            linear = torch.nn.Linear(module.insize, module.outsize)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(backend.toHost(module.W).T.copy()))
                linear.bias.copy_(torch.from_numpy(backend.toHost(module.b)))
            layers.append(linear)
        else:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(device)
    return model, torch.optim.Adagrad(model.parameters(), lr=LEARN_RATE, eps=EPSILON)


def torchSteps(torch, model, optimizer, batches, steps, device):
    loss = torch.nn.CrossEntropyLoss()
    for step in range(steps):
        data, labels = batches[step % len(batches)]
        optimizer.zero_grad(set_to_none=False)
        loss(model(data), labels).backward()
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()


def checkSameComputation(torch, digits, device):
    """Train both from the same weights for 5 steps; return the largest parameter difference."""
    net, optimizer = minidlSetup()
    model, torchOptimizer = torchSetup(torch, net, device)
    minidlSteps(net, optimizer, minidlBatches(digits), 5)
    torchSteps(torch, model, torchOptimizer, torchBatches(torch, digits, device), 5, device)
    theirs = [p.detach().cpu().numpy() for p in model.parameters()]
    ours = [backend.toHost(var.data) for var in net.getVarTable().values()]
    return max(float(numpy.abs(a - (b.T if b.ndim == 2 else b)).max()) for a, b in zip(ours, theirs))


def milliseconds(timings):
    return float(numpy.median(timings)) * 1000


def minidlWorker(args, digits):
    """{row: seconds per step of each repeat} for minidl's three rows, alternating within each repeat."""
    net, optimizer = minidlSetup()
    batches = minidlBatches(digits)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=BATCH, verbose=False)
    batchesPerEpoch = len(digits.trainData) / BATCH  # the last, partial batch counts for its share
    epochsPerRepeat = max(1, round(args.steps / batchesPerEpoch))
    capturedNet, capturedOptimizer = minidlSetup()
    captured = minidl.capture(capturedNet, CrossEntropy(), capturedOptimizer)
    rows = {"minidl, step loop": [], "minidl, captured step (minidl.capture)": [],
            "minidl, Trainer.trainFromHost (captured)": []}
    for repeat in range(args.repeats + 1):  # the first repeat warms up and is not counted
        start = time.perf_counter()
        minidlSteps(net, optimizer, batches, args.steps)
        timings = [(time.perf_counter() - start) / args.steps]
        start = time.perf_counter()
        capturedSteps(captured, batches, args.steps)
        timings.append((time.perf_counter() - start) / args.steps)
        start = time.perf_counter()
        for _ in range(epochsPerRepeat):
            trainer.trainFromHost(digits.trainData, digits.trainLabels)
        backend.synchronize()
        timings.append((time.perf_counter() - start) / (epochsPerRepeat * batchesPerEpoch))
        if repeat:
            for row, timing in zip(rows.values(), timings):
                row.append(timing)
    return rows


def torchWorker(args, digits):
    """{"PyTorch <version>": seconds per step of each repeat}, on the device kind minidl runs on."""
    import torch

    device = "cuda" if backend.isGpu else "cpu"
    net, _ = minidlSetup()
    model, optimizer = torchSetup(torch, net, device)
    batches = torchBatches(torch, digits, device)
    timings = []
    for repeat in range(args.repeats + 1):
        start = time.perf_counter()
        torchSteps(torch, model, optimizer, batches, args.steps, device)
        if repeat:
            timings.append((time.perf_counter() - start) / args.steps)
    return {f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads": timings}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2, help="processes per framework, alternating")
    parser.add_argument("--worker", choices=("minidl", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    digits = loadDigits()
    if args.worker:
        print(json.dumps((minidlWorker if args.worker == "minidl" else torchWorker)(args, digits)))
        return
    try:
        import torch
    except ImportError:
        torch = None
    names = ["minidl"]
    if torch is not None:
        difference = checkSameComputation(torch, digits, "cuda" if backend.isGpu else "cpu")
        assert difference < 1e-4, f"minidl and PyTorch disagree after 5 steps by {difference}"
        names.append("torch")
    results = runWorkers("benchmarks.train_step", names, args.rounds,
                         ["--steps", str(args.steps), "--repeats", str(args.repeats)])
    rows = {}
    for runs in results.values():
        for run in runs:
            for label, timings in run.items():
                rows.setdefault(label, []).extend(timings)
    print(f"machine: {machine()}")
    if torch is not None:
        print(f"check: after 5 steps from the same weights, minidl and PyTorch differ by at most {difference:.1e}")
    print(f"digits MLP 64-256-256-10, batch {BATCH}, AdaGrad; each framework in its own process, {args.rounds} "
          f"processes each, alternating; median of their {args.repeats} repeats each\n")
    reference = milliseconds(rows["minidl, step loop"])
    print("| implementation | ms per step of 128 samples | time ratio to minidl's step loop |")
    print("| --- | ---: | ---: |")
    for label, timings in rows.items():
        print(f"| {label} | {milliseconds(timings):.3f} | {milliseconds(timings) / reference:.2f} |")


if __name__ == "__main__":
    main()
