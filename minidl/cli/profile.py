"""``minidl profile``: one training step of a model on the simulated device, counted, and a stated model of its
time on a named GPU.

    minidl profile --model resnet18 --batch-size 32 --input 3x32x32 [--gpu h100] [--json FILE]
    minidl profile --task text --model transformer --batch-size 32

The step is the one ``minidl train`` takes (forward, cost, zeroing, backward, the optimizer's update; for the text
task also drawing and copying its windows), run once to warm up and once recorded: launches, products, syncs
(with the line that caused each), copies, host random draws, bytes moved, the device memory high-water mark, the
heaviest kernels, the launches with few threads for the tensors they touch, and the predicted step time from
``minidl.backend.simulated.gpumodel`` (labelled as a model). Then the same step as training takes it, captured as a
CUDA graph and replayed (``minidl.train.capturedstep``): one replay recorded, its graph launch, the launches the host
still makes, copies and syncs, and its predicted time. The command always runs on the simulated device.
"""

import copy
import functools
import json
import time

import numpy

from minidl import backend
from minidl.atomicfile import writeAtomically
from minidl.cli.export import outputFile
from minidl.cost import CrossEntropy
from minidl.errors import BackendError, DataError
from minidl.models import LANGUAGE_MODELS, MODELS
from minidl.optim import Adam

TASKS = ("classify", "text")
DIGITS_SHAPES = {True: (64,), False: (1, 8, 8)}  # the digits, flat or as images: the command's default data
CLASSES = 10
FEW_THREADS = 16  # a launch is listed as narrow when the tensor it touches has this many elements per thread


def parseShape(text):
    """``3x32x32`` as (3, 32, 32)."""
    try:
        shape = tuple(int(side) for side in text.lower().split("x"))
    except ValueError:
        raise DataError(f"--input takes sides joined by x, such as 3x32x32, got {text!r}") from None
    if not shape or min(shape) < 1:
        raise DataError(f"--input sides must be at least 1, got {text!r}")
    return shape


def addArguments(parser):
    from minidl.backend.simulated.gpumodel import GPUS

    parser.add_argument("--task", choices=TASKS, default="classify", help="classify (default) or text")
    parser.add_argument("--model", required=True, choices=sorted(set(MODELS) | set(LANGUAGE_MODELS)))
    parser.add_argument("--batch-size", type=int, default=32, help="(default: 32)")
    parser.add_argument("--input", type=parseShape, metavar="CxHxW",
                        help="sample shape for --task classify (default: the digits, 64 or 1x8x8)")
    parser.add_argument("--gpu", choices=sorted(GPUS), default="h100", help="GPU of the time model (default: h100)")
    parser.add_argument("--json", type=outputFile, metavar="FILE", help="also write the figures as JSON")
    parser.set_defaults(run=run)


def trainerStep(net, batchSize, shape, classes=CLASSES, capture=False):
    """A Trainer's step of ``net`` with Adam on a fixed random batch of ``shape`` samples already on the device,
    uncaptured (every module's launches, counted) or ``capture``d as training runs it."""
    from minidl.train import Trainer

    optimizer = Adam().setupOn(net, useGlobalState=True)
    optimizer.deferred = True  # as in the Trainer's epochs: the guard is read after a macro-batch, not in the step
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=batchSize, verbose=False, capture=capture)
    rng = numpy.random.default_rng(0)
    data = backend.toDevice(rng.standard_normal((batchSize, *shape), dtype=numpy.float32))
    labels = backend.toDevice(rng.integers(0, classes, batchSize, dtype=numpy.int32))
    net.trainMode()
    return lambda: trainer.step(data, labels)


def classifyStep(model, batchSize, shape, capture=False):
    """The step of ``minidl train``'s classify task on a fixed random batch already on the device."""
    spec = MODELS[model]
    shape = shape or DIGITS_SHAPES[spec.flat]
    step = trainerStep(spec.build(shape, CLASSES), batchSize, shape, capture=capture)
    return step, f"{model}, batch {batchSize}, input {'x'.join(map(str, shape))}"


def textStep(model, batchSize, capture=False):
    """The step of ``minidl train --task text``: windows drawn and copied, then trained on."""
    from minidl.cli.texttask import MODEL_OPTIONS, buildModel, trainingStep
    from minidl.datasets.text import CharCorpus, stdlibText
    from minidl.train.capturedstep import CapturedStep, ordinaryStep

    corpus = CharCorpus(stdlibText())
    net = buildModel(model, len(corpus.vocabulary), MODEL_OPTIONS[model])
    optimizer = Adam(alpha=0.005).setupOn(net, useGlobalState=True)
    optimizer.deferred = True  # as in the command's epochs: the guard is read at the end of an epoch
    cost = CrossEntropy()
    net.trainMode()
    step = CapturedStep(net, cost, optimizer) if capture else functools.partial(ordinaryStep, net, cost, optimizer)
    return lambda: trainingStep(step, corpus, batchSize), f"{model} language model, batch {batchSize}"


def hostSecondsPerCall(repeats=2000):
    """minidl's own Python per kernel call on this machine before CuPy's call: a 3-argument Elementwise on 16
    values called as a step calls it, its launch prepared at its first call (``devicelaunch``), through a copy of
    the kernel whose CuPy kernel does nothing (CuPy's own call, ``gpumodel.CUPY_LAUNCH_SECONDS``, is added by the
    model). On NumPy arrays the copy runs its compiled host path instead."""
    from minidl.nn.activationfunctions import tanh

    probe = copy.copy(tanh.grad)  # grad, y -> ingrad
    probe._cupyKernels, probe._launches, probe._prepared = {(): lambda *args, size=None: None}, {}, {}
    x = backend.xp.zeros(16, dtype=numpy.float32)
    args = [x, x, backend.xp.zeros(16, dtype=numpy.float32)]
    probe(*args)  # the first call of the signature: every check, and the launch prepared
    start = time.perf_counter()
    for _ in range(repeats):
        probe(*args)
    return (time.perf_counter() - start) / repeats


def profileStep(step, gpu="h100", hostPerLaunch=None):
    """Run ``step()`` once to warm up, once recorded; the trace and the figures (a dict)."""
    from minidl.backend.simulated import gpumodel, trace

    if backend.name != "simulated":
        raise BackendError(f"profiling runs on the simulated device (MINIDL_BACKEND=simulated), not {backend.name}")
    step()
    with trace.recording() as recorded:
        step()
    hostPerLaunch = hostSecondsPerCall() if hostPerLaunch is None else hostPerLaunch
    predicted = gpumodel.predict(recorded, gpumodel.GPUS[gpu], hostPerLaunch)
    figures = {**recorded.summary(), "predictedSeconds": predicted["seconds"], "model": {
        "gpu": gpumodel.GPUS[gpu].name, "hostSecondsPerLaunch": hostPerLaunch,
        "cupyLaunchSeconds": gpumodel.CUPY_LAUNCH_SECONDS, **predicted}}
    return recorded, figures


def profileReplay(step, gpu="h100", hostPerLaunch=None):
    """Run a captured ``step()`` until it replays (an ordinary step, the capture, the check), then one replay
    recorded; its figures (a dict). A step that is not replayed as one graph launch is a BackendError."""
    from minidl.backend.simulated import gpumodel, trace

    for _ in range(3):
        step()
    with trace.recording() as recorded:
        step()
    if len(recorded.graphLaunches) != 1:
        raise BackendError(f"the step did not replay as a CUDA graph ({len(recorded.graphLaunches)} graph launches): "
                           f"its capture was refused (see the warning logged)")
    hostPerLaunch = hostSecondsPerCall() if hostPerLaunch is None else hostPerLaunch
    predicted = gpumodel.predict(recorded, gpumodel.GPUS[gpu], hostPerLaunch)
    return {**recorded.summary(), "graphNodes": recorded.graphLaunches[0].nodes,
            "predictedSeconds": predicted["seconds"], "model": {"graphLaunchSeconds": gpumodel.GRAPH_LAUNCH_SECONDS,
                                                                 **predicted}}


def narrowLaunches(recorded, count=10):
    """Kernels whose launches give each thread at least FEW_THREADS elements of the largest tensor they touch:
    [(name, launches, threads, largest tensor)], most elements per thread first."""
    seen = {}
    for launch in recorded.launches:
        if not launch.flops and launch.largestArray >= FEW_THREADS * max(launch.threads, 1):
            seen.setdefault((launch.name, launch.threads, launch.largestArray), [0])[0] += 1
    ranked = sorted(seen.items(), key=lambda item: -item[0][2] / max(item[0][1], 1))[:count]
    return [(name, launches[0], threads, largest) for (name, threads, largest), launches in ranked]


def report(title, recorded, figures, say=print):
    megabytes = 1 / 2**20
    say(f"minidl profile: {title}: one training step on the simulated device (after a warm-up step)")
    say(f"  launches {figures['launches']} (products {figures['products']}, {figures['flops'] / 1e9:.3f} GFLOP), "
        f"syncs {figures['syncs']} (device-to-host copies {figures['deviceToHost']}), host-to-device copies "
        f"{figures['hostToDevice']} ({figures['pageableCopies']} pageable), host random draws "
        f"{figures['hostRandomDraws']}")
    say(f"  bytes moved {figures['bytes'] * megabytes:.1f} MiB, device memory high-water "
        f"{figures['memoryHighWater'] * megabytes:.1f} MiB")
    say("  heaviest kernels (by bytes):  launches      MiB  threads/launch")
    for name, launches, moved, threads in recorded.heaviest():
        say(f"    {name:32.32s} {launches:6d} {moved * megabytes:8.1f} {threads:15d}")
    narrow = narrowLaunches(recorded)
    say(f"  launches with at least {FEW_THREADS} elements of their largest tensor per thread: "
        f"{'none' if not narrow else ''}")
    for name, launches, threads, largest in narrow:
        say(f"    {name:32.32s} {launches:6d} x {threads} threads over {largest} elements "
            f"({largest // max(threads, 1)} per thread)")
    for event in recorded.syncs:
        say(f"  sync: {event.what} at {event.where}")
    for event in recorded.pageableCopies:
        say(f"  pageable copy to the device: {event.nbytes} bytes at {event.where}")
    for event in recorded.randomDraws:
        say(f"  host random draw: {event.what} of {event.nbytes} values at {event.where}")
    model = figures["model"]
    say(f"  predicted step on an {model['gpu']} (a MODEL, not a measurement: see minidl.backend.simulated."
        f"gpumodel): {figures['predictedSeconds'] * 1e3:.3f} ms (device {model['deviceSeconds'] * 1e3:.3f} ms, "
        f"host {model['hostSeconds'] * 1e3:.3f} ms at {model['hostSecondsPerLaunch'] * 1e6:.1f} µs of minidl + "
        f"{model['cupyLaunchSeconds'] * 1e6:.0f} µs of CuPy per launch, copies {model['copySeconds'] * 1e3:.3f} ms)")
    replay = figures.get("replay")
    if replay is not None:
        say(f"  as training runs it, captured as a CUDA graph and replayed: one graph launch of {replay['graphNodes']} "
            f"kernels, {replay['hostLaunches']} launches and {replay['hostToDevice']} host-to-device copies besides, "
            f"syncs {replay['syncs']}; predicted {replay['predictedSeconds'] * 1e3:.3f} ms (device "
            f"{replay['model']['deviceSeconds'] * 1e3:.3f} ms, host {replay['model']['hostSeconds'] * 1e3:.3f} ms with "
            f"{replay['model']['graphLaunchSeconds'] * 1e6:.0f} µs per graph launch)")


def run(args, argv):
    if args.batch_size < 1:
        raise DataError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.task == "text":
        if args.model not in LANGUAGE_MODELS:
            raise DataError(f"--task text profiles a language model: {', '.join(sorted(LANGUAGE_MODELS))}")
        if args.input is not None:
            raise DataError("--input is for --task classify; the text task reads windows of characters")
        step, title = textStep(args.model, args.batch_size)
        replayed, _ = textStep(args.model, args.batch_size, capture=True)
    else:
        if args.model not in MODELS:
            raise DataError(f"--task classify profiles {', '.join(sorted(MODELS))}, got --model {args.model}")
        step, title = classifyStep(args.model, args.batch_size, args.input)
        replayed, _ = classifyStep(args.model, args.batch_size, args.input, capture=True)
    recorded, figures = profileStep(step, args.gpu)
    figures["replay"] = profileReplay(replayed, args.gpu, figures["model"]["hostSecondsPerLaunch"])
    report(title, recorded, figures)
    if args.json:
        writeAtomically(args.json, json.dumps(figures, indent=1).encode(), DataError)
    return 0
