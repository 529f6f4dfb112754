"""``minidl train``: train a model on a data set with the fit loop, print per-epoch numbers, checkpoint every epoch.

Everything goes to ``--out DIR``: ``checkpoint.safetensors`` (rewritten atomically after each epoch, with the
run's history, schedule and callback state, so ``--resume`` continues exactly where a stopped run was, up to
``--epochs`` in total), ``best.safetensors`` (the epoch of the lowest validation error), ``log.csv`` (one row per
epoch), ``report.txt`` and ``report.json`` (the final confusion matrix and per-class precision, recall, F1),
and with ``--tensorboard`` the folder ``tensorboard/``. A resumed run keeps the checkpoint's model, optimizer,
data, schedule, batch size and seed (see checks.py: a flag that differs is applied and reported, or refused). A
new run never replaces a checkpoint unless ``--overwrite`` says so. Every flag is checked before anything is
built or trained.

``--dtype float16`` trains in half precision with float32 master weights and dynamic loss scaling (each epoch's
line gives the scale and the steps skipped for overflow); ``float64`` trains exactly in float64. A non-finite
gradient stops the run with an error and a non-zero exit by default (``--nonfinite skip`` skips such steps), and an
epoch whose parameters or error are not finite is never written over the last good checkpoint.

Under ``mpiexec -n N`` the command trains data-parallel on N ranks (batch ``--batch-size`` per rank); only
rank 0 prints, plots and writes the checkpoint, which a 1-process run loads as it is. A user error found
by the checks is printed once; an error on any rank during training ends the whole job.
"""

import argparse
import contextlib
import inspect
import json
import os
import sys
from typing import NamedTuple

import numpy

import minidl.optim
from minidl import backend
from minidl.cli.checks import (
    RunSettings,
    checkOnEveryRank,
    fillDefaults,
    plotFile,
    protectCheckpoint,
    resumeFlags,
)
from minidl.cli.limits import capEpochs, capSamples, readLimit
from minidl.cost import CrossEntropy
from minidl.datasets import Augment, DataSet, loadCifar10, loadDigits, loadMnist
from minidl.distributed import NodeInfo
from minidl.errors import BackendError, CheckpointError, DataError, OptimizerError
from minidl.models import LANGUAGE_MODELS, MODELS
from minidl.optim.schedules import (
    CosineSchedule,
    ExponentialSchedule,
    OneCycleSchedule,
    PlateauSchedule,
    StepSchedule,
    rateName,
)
from minidl.train import (
    BestCheckpoint,
    Callback,
    CsvLog,
    EarlyStopping,
    Fit,
    PeriodicCheckpoint,
    TensorBoardLog,
    Trainer,
    loadCheckpoint,
    readCheckpointSummary,
    saveCheckpoint,
)

CHECKPOINT_NAME = "checkpoint.safetensors"
DTYPES = ("float16", "float32", "float64")
BEST_NAME = "best.safetensors"
LOG_NAME = "log.csv"
REPORT_NAME = "report"
TENSORBOARD_NAME = "tensorboard"
DATASETS = {"digits": None, "mnist": loadMnist, "fashion-mnist": loadMnist, "cifar10": loadCifar10}
SCHEDULES = ("cosine", "exponential", "onecycle", "plateau", "step")
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
    # the settings a checkpoint remembers default to None: a resumed run takes its checkpoint's (see checks.py)
    parser.add_argument("--task", choices=sorted(TASKS), default="classify",
                        help="classify: the images of --data; digits-rows: each digit as a sequence of 8 rows (an "
                             "LSTM); text: a character language model (default: classify)")
    parser.add_argument("--model", choices=sorted(set(MODELS) | set(LANGUAGE_MODELS)),
                        help="network to train (default: the task's, mlp to classify)")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="(default: the task's, adagrad to classify)")
    parser.add_argument("--epochs", type=atLeast(1),
                        help="epochs in total, resumed ones included (default: the task's, 20 to classify)")
    parser.add_argument("--batch-size", type=atLeast(1), help="(default: the task's, 128 to classify)")
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
    parser.add_argument("--dtype", choices=DTYPES, default="float32",
                        help="float16: float32 master weights and dynamic loss scaling (default: float32)")
    parser.add_argument("--nonfinite", choices=minidl.optim.optimizer.NON_FINITE, default="raise",
                        help="a NaN or inf gradient: stop with an error, skip the step, or no check (default: raise)")
    parser.add_argument("--plot", type=plotFile, metavar="FILE.png",
                        help="write the training curves to this picture (drawn from the run's log)")
    parser.add_argument("--data", choices=sorted(DATASETS),
                        help="data set (default: digits, which needs no files); the others read --data-dir")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder of the downloaded files: MNIST / Fashion-MNIST IDX files (gzipped or not), "
                             "CIFAR-10's binary batches")
    parser.add_argument("--schedule", choices=SCHEDULES,
                        help="learning-rate schedule: cosine and onecycle per step over the whole run, step (x0.1 "
                             "every third of the run), exponential (to 1%% at the end), plateau (x0.5 after 2 epochs "
                             "without a lower validation error) per epoch (default: a constant rate)")
    parser.add_argument("--warmup", type=atLeast(0), default=0, metavar="EPOCHS",
                        help="with --schedule cosine: a linear warmup from 0 over this many epochs (default: 0)")
    parser.add_argument("--early-stop", type=atLeast(1), metavar="PATIENCE",
                        help="stop once the validation error has not fallen for PATIENCE epochs")
    parser.add_argument("--augment", action="store_true",
                        help="image models: random crops of the images padded by an eighth of their side, and "
                             "horizontal flips on cifar10 (drawn on the host from --seed)")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also log TensorBoard scalars to OUT/tensorboard (needs minidl[tensorboard])")
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


TASKS = {  # what --task trains by default; a flag given overrides its entry (classify: see checks.REMEMBERED)
    "classify": TaskDefaults(None, None, None, 20, None),
    "digits-rows": TaskDefaults("lstm", "adam", 0.01, 12, 32),
    "text": TaskDefaults("lstm", "adam", 0.005, 8, 32),
}


def applyTaskDefaults(args):
    """Fill the flags left out with the task's defaults (classify leaves its own to checks.fillDefaults and the
    checkpoint); refuse a model or data set the task cannot train."""
    defaults = TASKS[args.task]
    if args.model is None:
        args.model = defaults.model
    if args.optimizer is None and defaults.optimizer is not None:
        args.optimizer, args.lr = defaults.optimizer, defaults.learnRate if args.lr is None else args.lr
    args.epochs = defaults.epochs if args.epochs is None else args.epochs
    if args.batch_size is None:
        args.batch_size = defaults.batchSize
    if args.task == "digits-rows" and (args.model != "lstm" or args.data not in (None, "digits")):
        raise DataError(f"--task digits-rows reads the digits as sequences of rows: --model lstm, --data digits; "
                        f"got --model {args.model}, --data {args.data}")
    if args.task == "classify" and args.model not in (None, *MODELS):
        raise DataError(f"--task classify trains {', '.join(sorted(MODELS))}, got --model {args.model}")
    if args.task == "text":
        args.seed = 0 if args.seed is None else args.seed


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
    for rate in ("learnRate", "alpha"):
        if rate in parameters:
            return cls(**{rate: DEFAULT_LEARN_RATE if learnRate is None else learnRate}, nodeinfo=nodeinfo)
    if learnRate is not None:
        raise OptimizerError(f"{cls.__name__} has no learning rate; leave out --lr")
    return cls(nodeinfo=nodeinfo)


class StopOnDivergence(Callback):
    """OptimizerError at the end of an epoch whose training error or parameters are not finite (one sum per
    parameter array), before the checkpoint callbacks (which run last) could write it over the last good one."""

    def onEpochEnd(self, fit, entry):
        module = fit.trainer.module
        total = sum(float(backend.xp.sum(var.data, dtype=numpy.float64)) for var in module.getVarTable().values())
        if not (numpy.isfinite(entry["trainError"]) and numpy.isfinite(total)):
            raise OptimizerError(f"training diverged in epoch {entry['epoch']} (train error {entry['trainError']}, "
                                 f"parameters {'finite' if numpy.isfinite(total) else 'not finite'}): the checkpoint "
                                 "of the last good epoch is kept; lower --lr")


def run(args, argv):
    applyTaskDefaults(args)
    if args.device is not None:
        switchDevice(args.device, argv)
    readLimit("MINIDL_MAX_SAMPLES")  # a malformed cap is refused before anything runs
    args.epochs = capEpochs(args.epochs)
    nodeinfo = NodeInfo.fromLauncher()  # before the network is built: on GPUs it picks this rank's device
    if args.task == "text":
        if nodeinfo is not None:
            raise DataError("--task text trains on one process: run it without mpiexec")
        return runTextTask(args)
    resumeReport, status = checkOnEveryRank(nodeinfo, lambda: checkRun(args))
    if status is not None:
        return status
    with nodeinfo.abortOnError() if nodeinfo is not None else contextlib.nullcontext():
        return train(args, nodeinfo, resumeReport)


def checkRun(args):
    """Everything about the flags and the checkpoint in --out, before anything is built or written (no
    collective runs here); returns the line reporting the flags a resume applies over the checkpoint's
    settings."""
    path = os.path.join(args.out, CHECKPOINT_NAME)
    protectCheckpoint(path, args.resume, args.overwrite)
    report = ""
    if args.resume:
        report = resumeFlags(args, readCheckpointSummary(path), path)
    else:
        fillDefaults(args)
    checkFlags(args)
    makeOptimizer(args.optimizer, args.lr)  # refuses a learning rate out of the optimizer's range
    return report


def checkFlags(args):
    """Errors in combinations of flags, before anything is loaded or written."""
    if args.data != "digits" and args.data_dir is None:
        raise DataError(f"--data {args.data} reads the files you downloaded: name their folder with --data-dir")
    if args.data == "digits" and args.data_dir is not None:
        raise DataError("--data-dir is for --data mnist, fashion-mnist or cifar10; digits need no files")
    if args.warmup and args.schedule != "cosine":
        raise OptimizerError("--warmup goes with --schedule cosine")
    if args.warmup >= args.epochs:
        raise OptimizerError(f"--warmup must be shorter than the run: {args.warmup} >= --epochs {args.epochs}")
    if args.augment and MODELS[args.model].flat:
        raise DataError(f"--augment transforms images: --model {args.model} takes flat samples")


def loadData(args, flat):
    """The DataSet of ``--data`` (validation: the test set of the file-based ones)."""
    if args.data == "digits":
        return loadDigits(flat=flat)
    return DATASETS[args.data](args.data_dir, flat=flat)


def stepsPerEpoch(samples, batchsize, nodeinfo):
    """Optimizer steps in one epoch: every minibatch, or each rank's share of the whole global batches."""
    if nodeinfo is None:
        return -(-samples // batchsize)
    return samples // (batchsize * nodeinfo.gridsize)


def makeSchedule(args, optimizer, steps):
    """The schedule of ``--schedule`` for a run of ``--epochs`` epochs of ``steps`` steps, and when it steps."""
    total = args.epochs * steps
    rate = getattr(optimizer, rateName(optimizer))
    if args.schedule == "cosine":
        return CosineSchedule(optimizer, total, warmup=args.warmup * steps), "step"
    if args.schedule == "onecycle":
        return OneCycleSchedule(optimizer, rate, total), "step"
    if args.schedule == "step":
        return StepSchedule(optimizer, max(1, args.epochs // 3)), "epoch"
    if args.schedule == "exponential":
        return ExponentialSchedule(optimizer, 0.01 ** (1 / args.epochs)), "epoch"
    if args.schedule == "plateau":
        return PlateauSchedule(optimizer, factor=0.5, patience=2), "epoch"
    return None, "epoch"


def precision(fit):
    """The loss scale and the steps skipped so far, for an epoch's line (nothing without a loss scaler)."""
    optimizer = fit.trainer.optimizer
    scaler = optimizer.lossScaler
    return "" if scaler is None else f"  loss scale {scaler.scale:g}  skipped {optimizer.skippedSteps}"


class PrintEpochs(Callback):
    """One line per epoch on standard output."""

    def __init__(self, say, epochs, checkpointPath):
        self.say, self.epochs, self.checkpointPath = say, epochs, checkpointPath

    def onFitStart(self, fit):
        if fit.epoch:
            self.say(f"resumed from {self.checkpointPath} after epoch {fit.epoch}")

    def onEpochEnd(self, fit, entry):
        self.say(f"epoch {entry['epoch']:3d}/{self.epochs}  train error {entry['trainError']:.4f}  val error "
                 f"{entry['valError']:.4f}  val accuracy {entry['valAccuracy']:.2%}  lr {entry['learnRate']:.4g}  "
                 f"{entry['seconds']:.2f} s  {entry['samplesPerSecond']:.0f} samples/s{precision(fit)}", flush=True)


def makeCallbacks(args, say, resumeReport=""):
    """Printing, the run's settings, checkpoints, the CSV log, and the optional early stopping and TensorBoard
    log."""
    path = os.path.join(args.out, CHECKPOINT_NAME)
    callbacks = [
        StopOnDivergence(), PrintEpochs(say, args.epochs, path), RunSettings(args, say, resumeReport),
        PeriodicCheckpoint(path),
        BestCheckpoint(os.path.join(args.out, BEST_NAME)), CsvLog(os.path.join(args.out, LOG_NAME)),
    ]
    if args.early_stop is not None:
        callbacks.append(EarlyStopping(patience=args.early_stop))
    if args.tensorboard:
        callbacks.append(TensorBoardLog(os.path.join(args.out, TENSORBOARD_NAME)))
    return callbacks


def writeReport(report, out, say):
    """Print the confusion matrix and per-class table, and write them beside the checkpoint."""
    matrix = "\n".join(" ".join(f"{count:6d}" for count in row) for row in report.confusion)
    text = (f"confusion matrix (rows: true class, columns: predicted class)\n{matrix}\n\n{report.table()}\n"
            f"accuracy {report.accuracy:.4f}\n")
    say(text, end="")
    base = os.path.join(out, REPORT_NAME)
    with open(base + ".txt", "w", encoding="utf-8") as file:
        file.write(text)
    with open(base + ".json", "w", encoding="utf-8") as file:
        json.dump(report.toDict(), file, indent=1)
    say(f"report: {base}.txt, {base}.json")


def train(args, nodeinfo, resumeReport=""):
    isRoot = nodeinfo is None or nodeinfo.isRoot
    say = print if isRoot else lambda *args, **kwargs: None
    spec = MODELS[args.model]
    backend.seed(args.seed)
    data = loadData(args, spec.flat)
    keep, keepVal = capSamples(len(data.trainData), "training samples"), capSamples(len(data.valData),
                                                                                     "validation samples")
    data = DataSet(data.trainData[:keep], data.trainLabels[:keep], data.valData[:keepVal], data.valLabels[:keepVal],
                   data.classes)
    module = spec.build(data.trainData.shape[1:], data.classes).calcMode(args.dtype)
    trainData, valData = (array.astype(args.dtype, copy=False) for array in (data.trainData, data.valData))
    scaler = minidl.optim.LossScaler() if args.dtype == "float16" else None
    optimizer = makeOptimizer(args.optimizer, args.lr, nodeinfo).setupOn(module, useGlobalState=True,
                                                                         lossScaler=scaler)
    optimizer.nonFinite = args.nonfinite
    augment = None
    if args.augment:
        augment = Augment(crop=max(1, data.trainData.shape[-1] // 8), flip=args.data == "cifar10")
    trainer = Trainer(module, CrossEntropy(), optimizer, batchsize=args.batch_size, verbose=isRoot, augment=augment)
    schedule, every = makeSchedule(args, optimizer, stepsPerEpoch(len(data.trainData), args.batch_size, nodeinfo))
    fit = Fit(trainer, schedule=schedule, scheduleEvery=every, callbacks=makeCallbacks(args, say, resumeReport))

    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as error:
        raise CheckpointError(f"--out: cannot make the folder {args.out}: {error}") from error
    path = os.path.join(args.out, CHECKPOINT_NAME)
    hyper = ", ".join(f"{key}={value:g}" for key, value in optimizer.getAttrDict().items())
    ranks = "" if nodeinfo is None else f", {nodeinfo.gridsize} ranks ({nodeinfo.transport})"
    say(
        f"{args.model} on {args.data} ({len(data.trainData)} train, {len(data.valData)} validation), "
        f"{optimizer!r}({hyper}), {schedule or 'constant rate'}, {augment or 'no augmentation'}, "
        f"batch {args.batch_size}, {args.dtype}, {backend.name}{ranks}"
    )
    fit.run(trainData, data.trainLabels, args.epochs, (valData, data.valLabels),
            resume=path if args.resume else None)
    say(f"checkpoint: {path}")
    if fit.validator.report is None:  # a resumed run that had already ended: no epoch validated the network yet
        fit.validator.validateFromHost(valData, data.valLabels)
    if isRoot:
        writeReport(fit.validator.report, args.out, say)
    if args.plot and isRoot:
        from minidl.cli.plot import plotLog

        plotLog(os.path.join(args.out, LOG_NAME), args.plot)
        say(f"plot: {args.plot}")
    return 0


def runTextTask(args):
    """The text task (minidl.cli.texttask), outside the fit loop: it samples its windows, it has no classes."""
    from minidl.cli.texttask import trainText

    path = os.path.join(args.out, CHECKPOINT_NAME)
    protectCheckpoint(path, args.resume, args.overwrite)
    backend.seed(args.seed)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as error:
        raise CheckpointError(f"--out: cannot make the folder {args.out}: {error}") from error
    return trainText(args, makeOptimizer, saveCheckpoint, loadCheckpoint, path, print)
