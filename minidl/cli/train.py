"""``minidl train``: train a model on the digits data set, print per-epoch numbers, checkpoint every epoch.

The checkpoint (``DIR/checkpoint.safetensors``, see minidl.train.checkpoint) is rewritten atomically after
each epoch and keeps the history of the run, so ``--resume`` continues exactly where a stopped run was,
up to ``--epochs`` in total.

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
from typing import NamedTuple

import minidl.optim
from minidl import backend
from minidl.cost import CrossEntropy
from minidl.datasets import DataSet, loadDigits
from minidl.distributed import NodeInfo
from minidl.errors import BackendError, CheckpointError, DataError, OptimizerError
from minidl.models import LANGUAGE_MODELS, MODELS
from minidl.train import Trainer, Validator, loadCheckpoint, saveCheckpoint

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


def fileInFolder(text):
    """An argparse type: a file path whose folder exists (checked before training, not after it)."""
    where = os.path.dirname(os.path.abspath(text))
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    if not os.path.isdir(where):
        raise argparse.ArgumentTypeError(f"no folder {where} to write {os.path.basename(text)} in")
    return text


def addArguments(parser):
    parser.add_argument("--task", choices=sorted(TASKS), default="digits",
                        help="digits: images; digits-rows: each digit as a sequence of 8 rows; text: a character "
                             "language model (default: digits)")
    parser.add_argument("--model", choices=sorted(set(MODELS) | set(LANGUAGE_MODELS)),
                        help="network to train (default: the task's, mlp for digits)")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="(default: the task's, adagrad for digits)")
    parser.add_argument("--epochs", type=atLeast(1),
                        help="epochs in total, resumed ones included (default: the task's, 20 for digits)")
    parser.add_argument("--batch-size", type=atLeast(1), help="(default: the task's, 128 for digits)")
    parser.add_argument(
        "--lr", type=float, default=None,
        help=f"learning rate: the optimizer's learnRate, or alpha for Adam-like ones (default: {DEFAULT_LEARN_RATE})",
    )
    parser.add_argument("--seed", type=atLeast(0), default=0, help="seed of initialisation and shuffling (default: 0)")
    parser.add_argument("--device", choices=sorted(DEVICES), help="default: the GPU when one answers, else the CPU")
    parser.add_argument("--out", default="runs", help="folder of the checkpoint (default: ./runs)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--plot", type=fileInFolder, metavar="FILE.png",
                        help="write the training curves to this picture")
    parser.add_argument("--text", metavar="FILE", help="--task text: the UTF-8 text to learn (default: a fixed set "
                        "of standard-library source files)")
    parser.add_argument("--windows", type=atLeast(1), default=2048,
                        help="--task text: windows of 64 characters per epoch (default: 2048)")
    parser.add_argument("--sample", type=atLeast(0), default=0, metavar="N",
                        help="--task text: write N characters from the trained model at the end")
    parser.add_argument("--prompt", default="", help="--task text: the text --sample continues (default: a newline)")
    parser.add_argument("--temperature", type=float, default=0.8, help="--task text: of --sample (default: 0.8)")
    parser.set_defaults(run=run)


class TaskDefaults(NamedTuple):
    model: str
    optimizer: str
    learnRate: float
    epochs: int
    batchSize: int


TASKS = {  # the defaults of what --task trains; a flag given overrides its entry
    "digits": TaskDefaults("mlp", "adagrad", DEFAULT_LEARN_RATE, 20, 128),
    "digits-rows": TaskDefaults("lstm", "adam", 0.01, 12, 32),
    "text": TaskDefaults("lstm", "adam", 0.005, 8, 32),
}


def applyTaskDefaults(args):
    """Fill the flags left out with the task's defaults; refuse a model the task cannot train."""
    defaults = TASKS[args.task]
    if args.model is None:
        args.model = defaults.model
    if args.optimizer is None:
        args.optimizer, args.lr = defaults.optimizer, defaults.learnRate if args.lr is None else args.lr
    args.epochs = defaults.epochs if args.epochs is None else args.epochs
    args.batch_size = defaults.batchSize if args.batch_size is None else args.batch_size
    if args.task == "digits-rows" and args.model != "lstm":
        raise DataError(f"--task digits-rows reads sequences of rows: --model lstm, got {args.model}")
    if args.task == "digits" and args.model not in MODELS:
        raise DataError(f"--task digits trains {', '.join(sorted(MODELS))}, got --model {args.model}")


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
    applyTaskDefaults(args)
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
    if args.task == "text":
        if nodeinfo is not None:
            raise DataError("--task text trains on one process: run it without mpiexec")
        return runTextTask(args)
    spec = MODELS[args.model]
    backend.seed(args.seed)
    data = loadDigits(flat=spec.flat)
    if args.task == "digits-rows":  # each image (1, 8, 8) as a sequence of 8 rows of 8 pixels
        data = DataSet(data.trainData.reshape(-1, 8, 8), data.trainLabels, data.valData.reshape(-1, 8, 8),
                       data.valLabels, data.classes)
    module = spec.build(data.trainData.shape[1:], data.classes)
    optimizer = makeOptimizer(args.optimizer, args.lr, nodeinfo).setupOn(module, useGlobalState=True)
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
        f"{args.model} on {args.task} ({len(data.trainData)} train, {len(data.valData)} validation), "
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
            saveCheckpoint(path, module, optimizer, epoch, extra={"history": history})
        say(f"epoch {epoch:3d}/{args.epochs}  train error {trainError:.4f}  val error {valError:.4f}  "
            f"val accuracy {validator.accuracy:.2%}  {seconds:.2f} s", flush=True)
    say(f"checkpoint: {path}")
    if args.plot and isRoot:
        from minidl.cli.plot import plotCurves

        plotCurves(history, args.plot)
        say(f"plot: {args.plot}")
    return 0


def runTextTask(args):
    from minidl.cli.texttask import trainText

    backend.seed(args.seed)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as error:
        raise CheckpointError(f"--out: cannot make the folder {args.out}: {error}") from error
    return trainText(args, makeOptimizer, saveCheckpoint, loadCheckpoint, os.path.join(args.out, CHECKPOINT_NAME),
                     print)
