"""Conv2D forward + backward (input and parameter gradients) for LeNet and ResNet-like shapes, then every
other module of the convolution family: ms per call on whatever device the backend picked, and the ratio to
PyTorch's layer on the same machine in the same run when torch is installed (on the CPU when minidl runs on
the CPU, on CUDA when it runs on the GPU).

    python -m benchmarks.conv [--repeats 10] [--rounds 2] [--pause 2] [--clock wall|process]

Each framework runs in a process of its own (``timing.runWorkers``), the two alternating for ``--rounds``
rounds; a row gives the median over the rounds of each round's median of ``--repeats`` calls, each row timed
after ``--pause`` seconds of rest. PyTorch's
modules get minidl's weights (the same seed builds them in both workers). ``--clock process`` times the
process's CPU time (see benchmarks.residual_step) instead of the wall time.
"""

import argparse
import functools
import json
import time

import numpy

from benchmarks.timing import machine, medianSeconds, runWorkers
from minidl import backend
from minidl.nn import (
    AvgPool1D,
    AvgPool3D,
    BatchNorm1D,
    BatchNorm3D,
    Conv1D,
    Conv2D,
    Conv3D,
    Deconv1D,
    Deconv2D,
    Deconv3D,
    GlobalAvgPool2D,
    GroupNorm,
    InstanceNorm2D,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    Pad2D,
    Upsample2D,
)

# name, (batch, inmaps, height, width), outmaps, size, stride, pad, groups
SHAPES = [
    ("LeNet conv1 5x5", (64, 1, 28, 28), 6, 5, 1, 0, 1),
    ("LeNet conv2 5x5", (64, 6, 12, 12), 16, 5, 1, 0, 1),
    ("digits CNN conv2 3x3, 4x4 maps", (256, 8, 4, 4), 16, 3, 1, 1, 1),
    ("ResNet 3x3, 64 maps 56x56", (8, 64, 56, 56), 64, 3, 1, 1, 1),
    ("ResNet 3x3 stride 2, 64->128", (8, 64, 56, 56), 128, 3, 2, 1, 1),
    ("ResNet 3x3, 256 maps 14x14", (8, 256, 14, 14), 256, 3, 1, 1, 1),
    ("ResNet 1x1, 256->64 28x28", (8, 256, 28, 28), 64, 1, 1, 0, 1),
    ("depthwise 3x3, 128 maps 28x28", (8, 128, 28, 28), 128, 3, 1, 1, 128),
]


def minidlSeconds(shape, module, timer):
    """Seconds of one forward and backward of a minidl module on a float32 input of ``shape``."""
    data = backend.toDevice(backend.generator().standard_normal(shape), dtype=numpy.float32)
    grad = backend.xp.ones_like(module(data))

    def step():
        module(data)
        module.backward(grad)

    return timer(step)


def torchSeconds(torch, conv, shape, timer):
    device = "cuda" if backend.isGpu else "cpu"
    weights = torch.tensor(backend.toHost(conv.W), device=device, requires_grad=True)
    bias = torch.tensor(backend.toHost(conv.b), device=device, requires_grad=True)
    data = torch.randn(shape, device=device, requires_grad=True)
    window = conv.window

    def step():
        out = torch.nn.functional.conv2d(data, weights, bias, window.stride, window.pad, window.dilation,
                                         conv.groups)
        out.backward(torch.ones_like(out))
        if device == "cuda":
            torch.cuda.synchronize()

    return timer(step)


# name, input shape, the minidl module, PyTorch's module (given torch.nn and the minidl module, same weights)
FAMILY = [
    ("Conv1D 5, 64->64, L 1024", (8, 64, 1024), lambda: Conv1D(64, 64, 5, pad=2),
     lambda nn, m: nn.Conv1d(64, 64, 5, padding=2)),
    ("Deconv2D 4x4 stride 2, 64->32", (8, 64, 28, 28), lambda: Deconv2D(64, 32, 4, stride=2, pad=1),
     lambda nn, m: nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)),
    ("Pad2D reflect 2", (8, 64, 56, 56), lambda: Pad2D(2, "reflect"), lambda nn, m: nn.ReflectionPad2d(2)),
    ("Upsample2D bilinear x2", (8, 64, 28, 28), lambda: Upsample2D(2, "bilinear"),
     lambda nn, m: nn.Upsample(scale_factor=2, mode="bilinear")),
    ("Upsample2D nearest x2", (8, 64, 28, 28), lambda: Upsample2D(2), lambda nn, m: nn.Upsample(scale_factor=2)),
    ("GlobalAvgPool2D", (32, 512, 4, 4), lambda: GlobalAvgPool2D(), lambda nn, m: nn.AdaptiveAvgPool2d(1)),
    ("GroupNorm 32 groups", (8, 256, 28, 28), lambda: GroupNorm(32, 256), lambda nn, m: nn.GroupNorm(32, 256)),
    ("InstanceNorm2D", (8, 64, 56, 56), lambda: InstanceNorm2D(64),
     lambda nn, m: nn.InstanceNorm2d(64, affine=True)),
    ("Conv3D 3x3x3, 32->32, 16x28x28", (4, 32, 16, 28, 28), lambda: Conv3D(32, 32, 3, pad=1),
     lambda nn, m: nn.Conv3d(32, 32, 3, padding=1)),
    ("Deconv3D 2x2x2 stride 2, 32->16", (4, 32, 8, 14, 14), lambda: Deconv3D(32, 16, 2, stride=2),
     lambda nn, m: nn.ConvTranspose3d(32, 16, 2, stride=2)),
    ("Deconv1D 4 stride 2, 64->32, L 512", (8, 64, 512), lambda: Deconv1D(64, 32, 4, stride=2, pad=1),
     lambda nn, m: nn.ConvTranspose1d(64, 32, 4, stride=2, padding=1)),
    ("MaxPool2D 2, 8x8 maps", (256, 8, 8, 8), lambda: MaxPool2D(2), lambda nn, m: nn.MaxPool2d(2)),
    ("MaxPool3D 2", (4, 32, 16, 28, 28), lambda: MaxPool3D(2), lambda nn, m: nn.MaxPool3d(2)),
    ("AvgPool3D 2", (4, 32, 16, 28, 28), lambda: AvgPool3D(2), lambda nn, m: nn.AvgPool3d(2)),
    ("MaxPool1D 3 stride 2", (8, 64, 1024), lambda: MaxPool1D(3, 2, 1), lambda nn, m: nn.MaxPool1d(3, 2, 1)),
    ("AvgPool1D 3 stride 2", (8, 64, 1024), lambda: AvgPool1D(3, 2, 1), lambda nn, m: nn.AvgPool1d(3, 2, 1)),
    ("BatchNorm3D", (4, 32, 16, 28, 28), lambda: BatchNorm3D(32), lambda nn, m: nn.BatchNorm3d(32)),
    ("BatchNorm1D", (8, 64, 1024), lambda: BatchNorm1D(64), lambda nn, m: nn.BatchNorm1d(64)),
]


def torchFamilySeconds(torch, makeTorch, module, shape, timer):
    device = "cuda" if backend.isGpu else "cpu"
    layer = makeTorch(torch.nn, module).to(device)
    with torch.no_grad():
        if "W" in module.vars:
            layer.weight.copy_(torch.from_numpy(backend.toHost(module.W)))
    data = torch.randn(shape, device=device, requires_grad=True)

    def step():
        out = layer(data)
        out.backward(torch.ones_like(out))
        if device == "cuda":
            torch.cuda.synchronize()

    return timer(step)


def makeConv(shape, outmaps, size, stride, pad, groups):
    return Conv2D(shape[1], outmaps, size, stride=stride, pad=pad, groups=groups)


def rested(timer, pause):
    """``timer`` that first lets the machine rest ``pause`` seconds: right after a heavy shape (the 56x56 ones keep
    both cores busy for seconds) minidl's next one ran up to 1.8x slower on this VM, recovering within seconds,
    so a row depended on the row before it. Both frameworks get the same rest."""
    def timed(step):
        time.sleep(pause)
        return timer(step)

    return timed


def worker(name, timer, pause):
    """Time every Conv2D shape, then every family module, in one framework, each after a rest of ``pause``
    seconds; print {"conv": [seconds per shape], "family": [seconds per module], "about": ...} as JSON (the last
    line)."""
    timer = rested(timer, pause)
    backend.seed(0)
    convs = [makeConv(*row[1:]) for row in SHAPES]
    modules = [row[2]() for row in FAMILY]
    if name == "minidl":
        conv = [minidlSeconds(row[1], conv, timer) for row, conv in zip(SHAPES, convs)]
        family = [minidlSeconds(row[1], module, timer) for row, module in zip(FAMILY, modules)]
        about = {}
    else:
        import torch

        conv = [torchSeconds(torch, conv, row[1], timer) for row, conv in zip(SHAPES, convs)]
        family = [torchFamilySeconds(torch, row[3], module, row[1], timer) for row, module in zip(FAMILY, modules)]
        about = {"version": torch.__version__, "threads": torch.get_num_threads()}
    print(json.dumps({"conv": conv, "family": family, "about": about}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per shape (the median is shown)")
    parser.add_argument("--rounds", type=int, default=2, help="processes per framework, alternating")
    parser.add_argument("--clock", choices=("wall", "process"), default="wall",
                        help="wall time, or the process's CPU time (default: wall)")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds of rest before each row (default 2)")
    parser.add_argument("--worker", choices=("minidl", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    timer = functools.partial(medianSeconds, repeats=args.repeats, warmup=2, clock=clock)
    if args.worker:
        worker(args.worker, timer, args.pause)
        return
    try:
        import torch
    except ImportError:
        torch = None
    names = ["minidl", "torch"] if torch is not None else ["minidl"]
    results = runWorkers("benchmarks.conv", names, args.rounds,
                         ["--repeats", str(args.repeats), "--clock", args.clock, "--pause", str(args.pause)])
    medians = {name: {part: numpy.median([run[part] for run in runs], axis=0) for part in ("conv", "family")}
               for name, runs in results.items()}
    theirs = medians.get("torch")
    versus = (f"PyTorch {results['torch'][0]['about']['version']}, {results['torch'][0]['about']['threads']} "
              f"threads" if theirs is not None else "PyTorch not installed")
    print(f"# {machine()}; {versus}; each framework in its own process, {args.rounds} rounds, {args.clock} time")
    print("\nConv2D forward + backward (input, weight and bias gradients), float32, NCHW\n")
    print("| shape | input | out, kernel, stride, pad, groups | GFLOP | minidl ms | PyTorch ms | minidl / PyTorch |")
    print("|---|---|---|---:|---:|---:|---:|")
    for index, (name, shape, outmaps, size, stride, pad, groups) in enumerate(SHAPES):
        outH, outW = makeConv(shape, outmaps, size, stride, pad, groups).window.outShape(*shape[2:], name)
        flops = 3 * 2 * shape[0] * outmaps * outH * outW * (shape[1] // groups) * size * size  # forward, ∂x, ∂W
        print(f"| {name} | {shape} | {outmaps}, {size}, {stride}, {pad}, {groups} | {flops / 1e9:.2f} "
              f"| {row(medians['minidl']['conv'][index], None if theirs is None else theirs['conv'][index])} |")
    print("\nThe convolution family, forward + backward, float32\n")
    print("| module | input | minidl ms | PyTorch ms | minidl / PyTorch |")
    print("|---|---|---:|---:|---:|")
    for index, (name, shape, _, _) in enumerate(FAMILY):
        print(f"| {name} | {shape} "
              f"| {row(medians['minidl']['family'][index], None if theirs is None else theirs['family'][index])} |")


def row(ours, reference):
    """The "minidl ms | PyTorch ms | ratio" cells."""
    if reference is None:
        return f"{ours * 1e3:.2f} | - | -"
    return f"{ours * 1e3:.2f} | {reference * 1e3:.2f} | {ours / reference:.2f}"


if __name__ == "__main__":
    main()
