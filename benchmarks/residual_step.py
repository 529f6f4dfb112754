"""Time per training step of a small residual CNN on CIFAR-sized images, minidl against PyTorch.

The network (3x32x32 inputs, batch 32, 10 classes): a 3x3 Conv2D stem to 16 maps, BatchNorm2D, ReLU; then per
stage (16, 32, 64 maps) a residual block (Conv2D 3x3 → BatchNorm2D → ReLU → Conv2D 3x3 → BatchNorm2D, added
to its input, ReLU), a 2x2 max pooling and, between stages, a 1x1 Conv2D widening the maps; a Linear head on
the flattened 64x4x4 maps. CrossEntropy, Adam (PyTorch's fused Adam). Both start from the same weights and
must agree after a few steps, so the rows time the same computation. Each framework is timed in a process of
its own (``timing.runWorkers``), minidl's step also captured and replayed (``minidl.capture``), and minidl once
more in a process that imported torch first without calling it (PyTorch brings an OpenMP runtime of its own:
minidl's step must not depend on it), the four alternating for
``--rounds`` rounds of ``--repeats`` timed repeats of ``--steps`` steps; a row gives the median and the best
repeat. ``--clock process`` counts the CPU time of the
process (all its threads) instead of the wall time: on a machine shared with other work, run with
``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1`` it measures the work each framework does, which the others' load
disturbs far less than wall time. ``--profile`` prints minidl's step profile (cProfile, by own time, on the same
clock) instead.

    python -m benchmarks.residual_step [--steps 10] [--repeats 5] [--rounds 3] [--clock wall|process] [--profile]
"""

import argparse
import cProfile
import io
import pstats
import time

import numpy

import minidl
from benchmarks.timing import machine, reportRepeats, runWorkers
from minidl import backend
from minidl.cost import CrossEntropy
from minidl.nn import Activation, Add, BatchNorm2D, Conv2D, Flatten, Graph, Identity, Linear, MaxPool2D, relu
from minidl.optim import Adam

BATCH, SHAPE, CLASSES, WIDTHS = 32, (3, 32, 32), 10, (16, 32, 64)


def minidlNet():
    """The network as a Graph, and its layers in the order ``torchNet`` builds them (for the weights)."""
    layers = []

    def add(module, *parents):
        if module.vars:
            layers.append(module)
        return module.node(*parents)

    def convNorm(node, inmaps, outmaps, size):
        return add(BatchNorm2D(outmaps), add(Conv2D(inmaps, outmaps, size, pad=size // 2, useBias=False), node))

    inp = Identity(name="images").node()
    node = add(Activation(relu), convNorm(inp, SHAPE[0], WIDTHS[0], 3))
    for index, maps in enumerate(WIDTHS):
        if index:
            node = convNorm(node, WIDTHS[index - 1], maps, 1)
        branch = convNorm(add(Activation(relu), convNorm(node, maps, maps, 3)), maps, maps, 3)
        node = add(MaxPool2D(), add(Activation(relu), add(Add(), branch, node)))
    side = SHAPE[1] // 2 ** len(WIDTHS)
    out = add(Linear(WIDTHS[-1] * side * side, CLASSES), add(Flatten(), node))
    return Graph(inputs=inp, outputs=out), layers


def torchNet(torch, layers):
    """The same network in PyTorch, with minidl's weights (Linear's W transposed)."""
    nn = torch.nn
    source = iter(layers)

    def copied(module):
        ours = next(source)
        with torch.no_grad():
            if isinstance(module, nn.Linear):
                module.weight.copy_(torch.from_numpy(backend.toHost(ours.W).T.copy()))
                module.bias.copy_(torch.from_numpy(backend.toHost(ours.b)))
            elif isinstance(module, nn.Conv2d):
                module.weight.copy_(torch.from_numpy(backend.toHost(ours.W)))
        return module

    def convNorm(inmaps, outmaps, size):
        return [copied(nn.Conv2d(inmaps, outmaps, size, padding=size // 2, bias=False)),
                copied(nn.BatchNorm2d(outmaps))]

    class Block(nn.Module):
        def __init__(self, maps):
            super().__init__()
            self.branch = nn.Sequential(*convNorm(maps, maps, 3), nn.ReLU(), *convNorm(maps, maps, 3))

        def forward(self, x):
            return torch.relu(self.branch(x) + x)

    modules = [*convNorm(SHAPE[0], WIDTHS[0], 3), nn.ReLU()]
    for index, maps in enumerate(WIDTHS):
        if index:
            modules += convNorm(WIDTHS[index - 1], maps, 1)
        modules += [Block(maps), nn.MaxPool2d(2)]
    side = SHAPE[1] // 2 ** len(WIDTHS)
    modules += [nn.Flatten(), copied(nn.Linear(WIDTHS[-1] * side * side, CLASSES))]
    return nn.Sequential(*modules)


def batches(count):
    rng = numpy.random.default_rng(0)
    return [(rng.standard_normal((BATCH, *SHAPE)).astype(numpy.float32),
             rng.integers(0, CLASSES, BATCH).astype(numpy.int32)) for _ in range(count)]


def minidlSetup():
    backend.seed(0)
    net, layers = minidlNet()
    return net, layers, Adam(alpha=1e-3).setupOn(net, useGlobalState=True)


def minidlSteps(net, optimizer, data, steps):
    cost = CrossEntropy()
    for step in range(steps):
        images, labels = data[step % len(data)]
        _, grad = cost(net(images), labels)
        optimizer.zeroGradParams()
        net.backward(grad, updGrad=False)
        optimizer.update()
    backend.synchronize()


def torchSetup(torch, layers):
    model = torchNet(torch, layers)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)


def torchSteps(torch, model, optimizer, data, steps):
    loss = torch.nn.CrossEntropyLoss()
    for step in range(steps):
        images, labels = data[step % len(data)]
        optimizer.zero_grad(set_to_none=False)
        loss(model(images), labels).backward()
        optimizer.step()


def checkSameComputation(torch, hostData):
    """Train both from the same weights for 3 steps; return the largest parameter difference."""
    net, layers, optimizer = minidlSetup()
    model, torchOptimizer = torchSetup(torch, layers)
    minidlSteps(net, optimizer, [(backend.toDevice(x), backend.toDevice(y)) for x, y in hostData], 3)
    torchSteps(torch, model, torchOptimizer, [(torch.from_numpy(x), torch.from_numpy(y).long()) for x, y in hostData],
               3)
    ours = [backend.toHost(var.data) for layer in layers for var in layer.vars.values()]
    theirs = [p.detach().numpy() for p in model.parameters()]
    return max(float(numpy.abs(a - (b.T if b.ndim == 2 else b)).max()) for a, b in zip(ours, theirs))


def kernelTimes(net, optimizer, data, steps, clock):
    """{kernel name: seconds per step} of the compiled Elementwise kernels (their host functions, timed around
    each call), which cProfile sees as one function."""
    from minidl.backend import hostkernel

    times, call, prepared = {}, hostkernel.HostFunction.__call__, hostkernel.PreparedCall.__call__

    def timed(function, size, args, rawShapes):  # a signature's first call
        start = clock()
        call(function, size, args, rawShapes)
        name = function.function.__name__
        times[name] = times.get(name, 0.0) + clock() - start

    def timedPrepared(self, args, size):  # the later ones
        start = clock()
        ran = prepared(self, args, size)
        name = self.function.function.__name__
        times[name] = times.get(name, 0.0) + clock() - start
        return ran

    hostkernel.HostFunction.__call__, hostkernel.PreparedCall.__call__ = timed, timedPrepared
    try:
        minidlSteps(net, optimizer, data, steps)
    finally:
        hostkernel.HostFunction.__call__, hostkernel.PreparedCall.__call__ = call, prepared
    return {name: seconds / steps for name, seconds in times.items()}


def profile(net, optimizer, data, steps, clock):
    minidlSteps(net, optimizer, data, 3)
    profiler = cProfile.Profile(clock)
    profiler.runcall(minidlSteps, net, optimizer, data, steps)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    total = stats.total_tt
    print(f"minidl residual-CNN step profile: {total / steps * 1e3:.1f} ms per step (cProfile, {steps} steps)\n")
    print("| function | share of the step (own time) |")
    print("|---|---:|")
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:14]
    for (path, line, name), (_, _, own, _, _) in rows:
        where = path.split("minidl/")[-1] if "minidl/" in path else path.split("/")[-1]
        print(f"| {name} ({where}:{line}) | {own / total:.0%} |")
    if backend.isGpu:
        return
    times = kernelTimes(net, optimizer, data, steps, clock)
    print(f"\nThe compiled kernels (host functions timed around each call, without the profiler), ms per step: "
          f"{sum(times.values()) * 1e3:.1f} in all\n")
    print("| kernel | ms per step |")
    print("|---|---:|")
    for name, seconds in sorted(times.items(), key=lambda item: -item[1])[:10]:
        print(f"| {name} | {seconds * 1e3:.2f} |")


def worker(name, args, clock):
    """Time ``args.repeats`` repeats of ``args.steps`` steps of one implementation after one untimed repeat;
    print the seconds per step of each repeat as JSON (the last line), with PyTorch's version and threads."""
    if name == "minidl, torch imported":
        import torch  # noqa: F401 (imported, never called)
    hostData = batches(4)
    net, layers, optimizer = minidlSetup()
    if name == "minidl, captured":
        data = [(backend.toDevice(x), backend.toDevice(y)) for x, y in hostData]
        step = minidl.capture(net, CrossEntropy(), optimizer)
        steps, about = (lambda: [step(*data[index % len(data)]) for index in range(args.steps)]), {}
    elif name.startswith("minidl"):
        data = [(backend.toDevice(x), backend.toDevice(y)) for x, y in hostData]
        steps, about = (lambda: minidlSteps(net, optimizer, data, args.steps)), {}
    else:
        import torch

        model, torchOptimizer = torchSetup(torch, layers)
        data = [(torch.from_numpy(x), torch.from_numpy(y).long()) for x, y in hostData]
        steps = lambda: torchSteps(torch, model, torchOptimizer, data, args.steps)  # noqa: E731
        about = {"version": torch.__version__, "threads": torch.get_num_threads()}
    reportRepeats(steps, args.steps, args.repeats, about, clock)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="processes per implementation, alternating")
    parser.add_argument("--clock", choices=("wall", "process"), default="wall",
                        help="wall time, or the process's CPU time (default: wall)")
    parser.add_argument("--profile", action="store_true", help="print minidl's step profile instead")
    parser.add_argument("--worker", choices=("minidl", "minidl, captured", "minidl, torch imported", "torch"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    if args.worker:
        worker(args.worker, args, clock)
        return
    if args.profile:
        hostData = batches(4)
        net, _, optimizer = minidlSetup()
        profile(net, optimizer, [(backend.toDevice(x), backend.toDevice(y)) for x, y in hostData], args.steps, clock)
        return
    try:
        import torch
    except ImportError:
        torch = None
    names = ["minidl", "minidl, captured"]
    if torch is not None and not backend.isGpu:
        difference = checkSameComputation(torch, batches(4))
        assert difference < 1e-4, f"minidl and PyTorch disagree after 3 steps by {difference}"
        names += ["minidl, torch imported", "torch"]
    workerArgs = ["--steps", str(args.steps), "--repeats", str(args.repeats), "--clock", args.clock]
    results = runWorkers("benchmarks.residual_step", names, args.rounds, workerArgs)
    seconds = {name: [value for run in runs for value in run["seconds"]] for name, runs in results.items()}

    versus = "no PyTorch row"
    if "torch" in results:
        about = results["torch"][0]
        versus = f"PyTorch {about['version']} on the CPU, {about['threads']} threads"
    print(f"machine: {machine()}; {versus}; each framework in its own process")
    if "torch" in results:
        print(f"check: after 3 steps from the same weights, minidl and PyTorch differ by at most {difference:.1e}")
    print(f"residual CNN on {SHAPE}, batch {BATCH}, Adam; {args.rounds} processes each, alternating, of "
          f"{args.repeats} repeats of {args.steps} steps; {args.clock} time\n")
    reference = numpy.median(seconds["minidl"])
    labels = {"minidl": "minidl", "minidl, captured": "minidl, captured step (minidl.capture)",
              "minidl, torch imported": "minidl, torch imported in its process (never called)",
              "torch": "PyTorch, fused Adam"}
    print("| implementation | median ms per step | best ms per step | median time ratio to minidl |")
    print("| --- | ---: | ---: | ---: |")
    for name, timings in seconds.items():
        print(f"| {labels[name]} | {numpy.median(timings) * 1e3:.2f} | {min(timings) * 1e3:.2f} "
              f"| {numpy.median(timings) / reference:.2f} |")


if __name__ == "__main__":
    main()
