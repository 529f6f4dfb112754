"""``minidl train``: train a model on the digits data set, print per-epoch numbers, checkpoint every epoch.

The checkpoint (``DIR/checkpoint.safetensors``, see minidl.train.checkpoint) is rewritten atomically after
each epoch and keeps the history of the run, so ``--resume`` continues exactly where a stopped run was,
up to ``--epochs`` in total.

``--dtype float16`` trains in half precision with float32 master weights and dynamic loss scaling (each epoch's
line gives the scale and the steps skipped for overflow); ``float64`` trains exactly in float64. A non-finite
gradient stops the run with an error and a non-zero exit by default (``--nonfinite skip`` skips such steps), and an
epoch whose parameters or error are not finite is never written over the last good checkpoint.

Under ``mpiexec -n N`` the command trains data-parallel on N ranks (batch ``--batch-size`` per rank); only
rank 0 prints, plots and writes the checkpoint, which a 1-process run loads as it is. An error on any
rank ends the whole job.
"""

import argparse
import contextlib
import importlib.util
import inspect
import os
import sys
import time

import numpy

import minidl.optim
from minidl import backend
from minidl.cost import CrossEntropy
from minidl.datasets import loadDigits
from minidl.distributed import NodeInfo
from minidl.errors import BackendError, CheckpointError, OptimizerError
from minidl.models import MODELS
from minidl.train import Trainer, Validator, loadCheckpoint, saveCheckpoint

CHECKPOINT_NAME = "checkpoint.safetensors"
DTYPES = ("float16", "float32", "float64")
DEFAULT_LEARN_RATE = 0.01
DEVICES = {"cpu": "numpy", "gpu": "cupy"}
OPTIMIZERS = {
    cls.__name__.lower(): cls
    for cls in (getattr(minidl.optim, name) for name in minidl.optim.__all__)
    if isinstance(cls, type) and issubclass(cls, minidl.optim.Optimizer) and cls is not minidl.optim.Optimizer
}


def atLeast(low):
    """An argparse type: an integer >= ``low`` (a bad value is a usage error before anything runs)."""

    def integer(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    return integer


def fileInFolder(text):
    """An argparse type: a file path whose folder exists (checked before training, not after it)."""
    where = os.path.dirname(os.path.abspath(text))
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    if not os.path.isdir(where):
        raise argparse.ArgumentTypeError(f"no folder {where} to write {os.path.basename(text)} in")
    return text


def addArguments(parser):
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp", help="network to train (default: mlp)")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adagrad", help="(default: adagrad)")
    parser.add_argument("--epochs", type=atLeast(1), default=20,
                        help="epochs in total, resumed ones included (default: 20)")
    parser.add_argument("--batch-size", type=atLeast(1), default=128, help="(default: 128)")
    parser.add_argument(
        "--lr", type=float, default=None,
        help=f"learning rate: the optimizer's learnRate, or alpha for Adam-like ones (default: {DEFAULT_LEARN_RATE})",
    )
    parser.add_argument("--seed", type=atLeast(0), default=0, help="seed of initialisation and shuffling (default: 0)")
    parser.add_argument("--device", choices=sorted(DEVICES), help="default: the GPU when one answers, else the CPU")
    parser.add_argument("--out", default="runs", help="folder of the checkpoint (default: ./runs)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--dtype", choices=DTYPES, default="float32",
                        help="float16: float32 master weights and dynamic loss scaling (default: float32)")
    parser.add_argument("--nonfinite", choices=minidl.optim.optimizer.NON_FINITE, default="raise",
                        help="a NaN or inf gradient: stop with an error, skip the step, or no check (default: raise)")
    parser.add_argument("--plot", type=fileInFolder, metavar="FILE.png",
                        help="write the training curves to this picture")
    parser.set_defaults(run=run)


def switchDevice(device, argv):
    """The backend is chosen at import: re-run this command on the other one when ``device`` asks for it."""
    wanted = DEVICES[device]
    if backend.name == wanted:
        return
    if wanted == "cupy" and backend.gpuProblem() is not None:
        raise BackendError(f"--device gpu: {backend.gpuProblem()}")
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "minidl", *argv], {**os.environ, "MINIDL_BACKEND": wanted})


def makeOptimizer(name, learnRate, nodeinfo=None):
    """The optimizer of this name, its learning rate (``learnRate``, or ``alpha`` for Adam) set to ``learnRate``."""
    cls = OPTIMIZERS[name]
    parameters = inspect.signature(cls).parameters
    for rateName in ("learnRate", "alpha"):
        if rateName in parameters:
            return cls(**{rateName: DEFAULT_LEARN_RATE if learnRate is None else learnRate}, nodeinfo=nodeinfo)
    if learnRate is not None:
        raise OptimizerError(f"{cls.__name__} has no learning rate; leave out --lr")
    return cls(nodeinfo=nodeinfo)


def checkFinite(module, epoch, trainError):
    """OptimizerError, before the epoch's checkpoint is written, when the run diverged: a non-finite training
    error or parameter (one sum per parameter array)."""
    total = sum(float(backend.xp.sum(var.data, dtype=numpy.float64)) for var in module.getVarTable().values())
    if not (numpy.isfinite(trainError) and numpy.isfinite(total)):
        raise OptimizerError(f"training diverged in epoch {epoch} (train error {trainError}, parameters "
                             f"{'finite' if numpy.isfinite(total) else 'not finite'}): the checkpoint of the "
                             "last good epoch is kept; lower --lr")


def resumedHistory(checkpoint):
    """The per-epoch history a checkpoint of this command keeps in its ``extra``, up to its epoch; empty for a
    checkpoint written otherwise (saveCheckpoint with any ``extra``)."""
    extra = checkpoint.extra
    history = extra.get("history") if isinstance(extra, dict) else None
    return history[:checkpoint.epoch] if isinstance(history, list) else []


def run(args, argv):
    if args.device is not None:
        switchDevice(args.device, argv)
    nodeinfo = NodeInfo.fromLauncher()  # before the network is built: on GPUs it picks this rank's device
    with nodeinfo.abortOnError() if nodeinfo is not None else contextlib.nullcontext():
        return train(args, nodeinfo)


def train(args, nodeinfo):
    isRoot = nodeinfo is None or nodeinfo.isRoot
    say = print if isRoot else lambda *args, **kwargs: None
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise BackendError("--plot needs matplotlib: pip install 'minidl[datasets]'")
    spec = MODELS[args.model]
    backend.seed(args.seed)
    data = loadDigits(flat=spec.flat)
    module = spec.build(data.trainData.shape[1:], data.classes).calcMode(args.dtype)
    trainData, valData = data.trainData.astype(args.dtype), data.valData.astype(args.dtype)
    scaler = minidl.optim.LossScaler() if args.dtype == "float16" else None
    optimizer = makeOptimizer(args.optimizer, args.lr, nodeinfo).setupOn(module, useGlobalState=True,
                                                                         lossScaler=scaler)
    optimizer.nonFinite = args.nonfinite
    trainer = Trainer(module, CrossEntropy(), optimizer, batchsize=args.batch_size)
    validator = Validator(module, CrossEntropy(), batchsize=args.batch_size, verbose=isRoot)

    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as error:
        raise CheckpointError(f"--out: cannot make the folder {args.out}: {error}") from error
    path = os.path.join(args.out, CHECKPOINT_NAME)
    done, history = 0, []
    if args.resume:
        checkpoint = loadCheckpoint(path, module, optimizer)
        done, history = checkpoint.epoch, resumedHistory(checkpoint)
        say(f"resumed from {path} after epoch {done}")
    hyper = ", ".join(f"{key}={value:g}" for key, value in optimizer.getAttrDict().items())
    ranks = "" if nodeinfo is None else f", {nodeinfo.gridsize} ranks ({nodeinfo.transport})"
    say(
        f"{args.model} on digits ({len(data.trainData)} train, {len(data.valData)} validation), "
        f"{optimizer!r}({hyper}), batch {args.batch_size}, {args.dtype}, {backend.name}{ranks}"
    )
    for epoch in range(done + 1, args.epochs + 1):
        start = time.perf_counter()
        trainError = trainer.trainFromHost(trainData, data.trainLabels)
        valError = validator.validateFromHost(valData, data.valLabels)
        checkFinite(module, epoch, trainError)
        seconds = time.perf_counter() - start
        history.append({"epoch": epoch, "trainError": trainError, "valError": valError,
                        "valAccuracy": validator.accuracy, "seconds": seconds})
        if isRoot:
            saveCheckpoint(path, module, optimizer, epoch, extra={"history": history})
        precision = "" if scaler is None else f"  loss scale {scaler.scale:g}  skipped {optimizer.skippedSteps}"
        say(f"epoch {epoch:3d}/{args.epochs}  train error {trainError:.4f}  val error {valError:.4f}  "
            f"val accuracy {validator.accuracy:.2%}  {seconds:.2f} s{precision}", flush=True)
    say(f"checkpoint: {path}")
    if args.plot and isRoot:
        from minidl.cli.plot import plotCurves

        plotCurves(history, args.plot)
        say(f"plot: {args.plot}")
    return 0
