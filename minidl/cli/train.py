"""``minidl train``: train a model on the digits data set, print per-epoch numbers, checkpoint every epoch.

The checkpoint (``DIR/checkpoint.safetensors``, see minidl.train.checkpoint) is rewritten atomically after
each epoch and keeps the history of the run, so ``--resume`` continues exactly where a stopped run was,
up to ``--epochs`` in total, with the checkpoint's model, optimizer, batch size and seed (see checks.py: a
flag that differs is applied and reported, or refused). A new run never replaces a checkpoint unless
``--overwrite`` says so. Every flag is checked before anything is built or trained.

Under ``mpiexec -n N`` the command trains data-parallel on N ranks (batch ``--batch-size`` per rank); only
rank 0 prints, plots and writes the checkpoint, which a 1-process run loads as it is. A user error found
by the checks is printed once; an error on any rank during training ends the whole job.
"""

import argparse
import contextlib
import inspect
import os
import sys
import time

import minidl.optim
from minidl import backend
from minidl.cli.checks import (
    applyLearnRate,
    checkOnEveryRank,
    fillDefaults,
    plotFile,
    protectCheckpoint,
    resumeFlags,
    runFlags,
)
from minidl.cost import CrossEntropy
from minidl.datasets import loadDigits
from minidl.distributed import NodeInfo
from minidl.errors import BackendError, CheckpointError, OptimizerError
from minidl.models import MODELS
from minidl.train import Trainer, Validator, loadCheckpoint, readCheckpointSummary, saveCheckpoint

CHECKPOINT_NAME = "checkpoint.safetensors"
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


def addArguments(parser):
    # model, optimizer, batch size and seed default to None: a resumed run takes its checkpoint's (see checks.py)
    parser.add_argument("--model", choices=sorted(MODELS), help="network to train (default: mlp)")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="(default: adagrad)")
    parser.add_argument("--epochs", type=atLeast(1), default=20,
                        help="epochs in total, resumed ones included (default: 20)")
    parser.add_argument("--batch-size", type=atLeast(1), help="(default: 128)")
    parser.add_argument(
        "--lr", type=float, default=None,
        help=f"learning rate: the optimizer's learnRate, or alpha for Adam-like ones (default: {DEFAULT_LEARN_RATE})",
    )
    parser.add_argument("--seed", type=atLeast(0), help="seed of initialisation and shuffling (default: 0)")
    parser.add_argument("--device", choices=sorted(DEVICES), help="default: the GPU when one answers, else the CPU")
    parser.add_argument("--out", default="runs", help="folder of the checkpoint (default: ./runs)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    existing.add_argument("--overwrite", action="store_true",
                          help="start a new run even if --out holds a checkpoint, replacing it")
    parser.add_argument("--plot", type=plotFile, metavar="FILE.png",
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
    resumeReport, status = checkOnEveryRank(nodeinfo, lambda: checkRun(args))
    if status is not None:
        return status
    with nodeinfo.abortOnError() if nodeinfo is not None else contextlib.nullcontext():
        return train(args, nodeinfo, resumeReport)


def checkRun(args):
    """Everything about the flags and the --out folder, before anything is built (no collective runs here);
    returns the line reporting the flags a resume applies over the checkpoint's settings."""
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as error:
        raise CheckpointError(f"--out: cannot make the folder {args.out}: {error}") from error
    path = os.path.join(args.out, CHECKPOINT_NAME)
    protectCheckpoint(path, args.resume, args.overwrite)
    report = ""
    if args.resume:
        report = resumeFlags(args, readCheckpointSummary(path), path)
    else:
        fillDefaults(args)
    makeOptimizer(args.optimizer, args.lr)  # refuses a learning rate out of the optimizer's range
    return report


def train(args, nodeinfo, resumeReport=""):
    isRoot = nodeinfo is None or nodeinfo.isRoot
    say = print if isRoot else lambda *args, **kwargs: None
    spec = MODELS[args.model]
    backend.seed(args.seed)
    data = loadDigits(flat=spec.flat)
    module = spec.build(data.trainData.shape[1:], data.classes)
    optimizer = makeOptimizer(args.optimizer, args.lr, nodeinfo).setupOn(module, useGlobalState=True)
    trainer = Trainer(module, CrossEntropy(), optimizer, batchsize=args.batch_size)
    validator = Validator(module, CrossEntropy(), batchsize=args.batch_size, verbose=isRoot)
    path = os.path.join(args.out, CHECKPOINT_NAME)
    done, history = 0, []
    if args.resume:
        checkpoint = loadCheckpoint(path, module, optimizer)
        done, history = checkpoint.epoch, resumedHistory(checkpoint)
        if args.lr is not None:
            applyLearnRate(optimizer, args.lr)
        say(f"resumed from {path} after epoch {done}")
        if resumeReport:
            say(resumeReport)
    hyper = ", ".join(f"{key}={value:g}" for key, value in optimizer.getAttrDict().items())
    ranks = "" if nodeinfo is None else f", {nodeinfo.gridsize} ranks ({nodeinfo.transport})"
    say(
        f"{args.model} on digits ({len(data.trainData)} train, {len(data.valData)} validation), "
        f"{optimizer!r}({hyper}), batch {args.batch_size}, {backend.name}{ranks}"
    )
    for epoch in range(done + 1, args.epochs + 1):
        start = time.perf_counter()
        trainError = trainer.trainFromHost(data.trainData, data.trainLabels)
        valError = validator.validateFromHost(data.valData, data.valLabels)
        seconds = time.perf_counter() - start
        history.append({"epoch": epoch, "trainError": trainError, "valError": valError,
                        "valAccuracy": validator.accuracy, "seconds": seconds})
        if isRoot:
            saveCheckpoint(path, module, optimizer, epoch, extra={"history": history, "flags": runFlags(args)})
        say(f"epoch {epoch:3d}/{args.epochs}  train error {trainError:.4f}  val error {valError:.4f}  "
            f"val accuracy {validator.accuracy:.2%}  {seconds:.2f} s", flush=True)
    say(f"checkpoint: {path}")
    if args.plot and isRoot:
        from minidl.cli.plot import plotCurves

        plotCurves(history, args.plot)
        say(f"plot: {args.plot}")
    return 0
