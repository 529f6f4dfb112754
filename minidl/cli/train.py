"""``minidl train``: train a model on a data set with the fit loop, print per-epoch numbers, checkpoint every epoch.

Everything goes to ``--out DIR``: ``checkpoint.safetensors`` (rewritten atomically after each epoch, with the
run's history, schedule and callback state, so ``--resume`` continues exactly where a stopped run was, up to
``--epochs`` in total), ``best.safetensors`` (the epoch of the lowest validation error), ``log.csv`` (one row per
epoch), ``report.txt`` and ``report.json`` (the final confusion matrix and per-class precision, recall, F1),
``manifest.json`` and ``digests.jsonl`` (what the run depends on, and its parameter digests per epoch: see
``minidl verify``), ``checkpoints/step-<t>.safetensors`` (every checkpoint written, and the start: what
``minidl verify --bisect`` replays from), and with ``--tensorboard`` the folder ``tensorboard/``. The folder is
locked for the run (``.minidl.lock``, see outlock.py): a second run into it is refused at once, naming the first's
pid. A resumed run keeps the checkpoint's model, optimizer, data, schedule, batch size and seed (see checks.py: a
flag that differs is applied and reported, or refused). A new run never replaces a checkpoint or another run's
files unless ``--overwrite`` says so. Every flag is checked before anything is built or trained.

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
from minidl.atomicfile import writeAtomically
from minidl.cli.checks import (
    HORIZON_SCHEDULES,
    RunSettings,
    checkOnEveryRank,
    fillDefaults,
    planEpochs,
    plotFile,
    protectRun,
    resumeFlags,
)
from minidl.cli.imagedata import ImageSettings, addImageArguments, checkImageFlags, isImageSource, openImageData
from minidl.cli.limits import capEpochs, capSamples, readLimit
from minidl.cli.outlock import OutLock
from minidl.cost import CrossEntropy
from minidl.datasets import Augment, loadCifar10, loadDigits, loadMnist
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
    Digests,
    EarlyStopping,
    Fit,
    PeriodicCheckpoint,
    TensorBoardLog,
    Trainer,
    loadCheckpoint,
    readCheckpointSummary,
    saveCheckpoint,
)
from minidl.train.callbacks import KEPT_NAME
from minidl.train.compare import DIGESTS_NAME, MANIFEST_NAME
from minidl.train.manifest import Manifest, imageSourceHash

CHECKPOINT_NAME = "checkpoint.safetensors"
DTYPES = ("float16", "float32", "float64")
BEST_NAME = "best.safetensors"
LOG_NAME = "log.csv"
REPORT_NAME = "report"
TENSORBOARD_NAME = "tensorboard"
RUN_FILES = [CHECKPOINT_NAME, BEST_NAME, LOG_NAME, REPORT_NAME + ".txt", REPORT_NAME + ".json", TENSORBOARD_NAME,
             MANIFEST_NAME, DIGESTS_NAME, KEPT_NAME]
DATASETS = {"digits": None, "mnist": loadMnist, "fashion-mnist": loadMnist, "cifar10": loadCifar10}
SCHEDULES = ("cosine", "exponential", "onecycle", "plateau", "step")
DEFAULT_LEARN_RATE = 0.01
RANK_SETTINGS = ("model", "optimizer", "lr", "epochs", "batch_size", "seed", "data", "dtype", "schedule", "warmup",
                 "augment", "nonfinite", "early_stop", "resume", "overwrite")  # alike on every MPI rank
DEVICES = {"cpu": "numpy", "gpu": "cupy", "simulated": "simulated"}
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
        help=f"learning rate: the optimizer's learnRate, or alpha for Adam-like ones (default: {DEFAULT_LEARN_RATE}; "
             f"--task text: {TASKS['text'].learnRate})",
    )
    parser.add_argument("--seed", type=atLeast(0), help="seed of initialisation and shuffling (default: 0)")
    parser.add_argument("--device", choices=sorted(DEVICES),
                        help="default: the GPU when one answers, else the CPU; simulated: the GPU path on the "
                             "simulated device (counted, slow: for tests and profiles)")
    parser.add_argument("--out", default="runs", help="folder of the checkpoint (default: ./runs)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    existing.add_argument("--overwrite", action="store_true",
                          help="start a new run even if --out holds a checkpoint, replacing it")
    parser.add_argument("--dtype", choices=DTYPES, default=FIT_FLAGS["dtype"],
                        help="float16: float32 master weights and dynamic loss scaling (default: float32)")
    parser.add_argument("--no-capture", dest="capture", action="store_false",
                        help="run every step ordinarily (by default a step of each batch shape is recorded once and "
                        "replayed, with the same bits: minidl.train.capturedstep)")
    parser.add_argument("--nonfinite", choices=minidl.optim.guard.NON_FINITE, default=FIT_FLAGS["nonfinite"],
                        help="a NaN or inf gradient: stop with an error, skip the step, or no check (default: raise)")
    parser.add_argument("--plot", type=plotFile, metavar="FILE.png",
                        help="write the training curves to this picture (drawn from the run's log)")
    parser.add_argument("--data", type=dataName, metavar="{" + ",".join(sorted(DATASETS)) + ",KIND:PATH}",
                        help="data set (default: digits, which needs no files); mnist, fashion-mnist and cifar10 "
                             "read --data-dir; image files: folder:PATH (one subfolder per class), tar:FILE, "
                             "zip:FILE (the same tree inside) or list:FILE (lines 'PATH LABEL')")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder of the downloaded files: MNIST / Fashion-MNIST IDX files (gzipped or not), "
                             "CIFAR-10's binary batches")
    parser.add_argument("--schedule", choices=SCHEDULES,
                        help="learning-rate schedule: cosine and onecycle per step over the whole run, step (x0.1 "
                             "every third of the run), exponential (to 1%% at the end), plateau (x0.5 after 2 epochs "
                             "without a lower validation error) per epoch (default: a constant rate)")
    parser.add_argument("--warmup", type=atLeast(0), metavar="EPOCHS",
                        help="with --schedule cosine: a linear warmup from 0 over this many epochs (default: 0; a "
                             "resumed run: its checkpoint's)")
    parser.add_argument("--early-stop", type=atLeast(1), metavar="PATIENCE",
                        help="stop once the validation error has not fallen for PATIENCE epochs")
    parser.add_argument("--augment", action="store_true",
                        help="image models: random crops of the images padded by an eighth of their side, and "
                             "horizontal flips on cifar10 (drawn on the host from --seed); on image files a random "
                             "resized crop, a flip and colour jitter per image, drawn from (seed, epoch, image)")
    parser.add_argument("--digest-steps", type=atLeast(1), metavar="K",
                        help="image files: also log the parameter digests every K steps (default: once per epoch)")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also log TensorBoard scalars to OUT/tensorboard (needs minidl[tensorboard])")
    parser.add_argument("--text", metavar="FILE", help="--task text: the UTF-8 text to learn (default: a fixed set "
                        "of standard-library source files)")
    parser.add_argument("--windows", type=atLeast(1), default=TEXT_FLAGS["windows"],
                        help="--task text: windows of 64 characters per epoch (default: 2048)")
    parser.add_argument("--sample", type=atLeast(0), default=TEXT_FLAGS["sample"], metavar="N",
                        help="--task text: write N characters from the trained model at the end")
    parser.add_argument("--prompt", default=TEXT_FLAGS["prompt"],
                        help="--task text: the text --sample continues (default: a newline)")
    parser.add_argument("--temperature", type=float, default=TEXT_FLAGS["temperature"],
                        help="--task text: of --sample (default: 0.8)")
    addImageArguments(parser, atLeast)
    parser.set_defaults(run=run)


def dataName(text):
    """An argparse type: a data set's name, or an image source KIND:PATH."""
    if text in DATASETS or isImageSource(text):
        return text
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(sorted(DATASETS))} or an image source "
                                     f"folder:PATH, tar:FILE, zip:FILE, list:FILE; got {text!r}")


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


# The flags only one kind of task reads, with their defaults: a flag given with another value to a task that does
# not read it is refused (applyTaskDefaults), never ignored.
TEXT_FLAGS = {"text": None, "windows": 2048, "sample": 0, "prompt": "", "temperature": 0.8}
FIT_FLAGS = {"data": None, "data_dir": None, "schedule": None, "warmup": None, "augment": False, "early_stop": None,
             "plot": None, "tensorboard": False, "digest_steps": None, "dtype": "float32", "nonfinite": "raise",
             "workers": None, "image_size": None, "channels": None, "val_fraction": None, "skip_corrupt": False,
             "checkpoint_steps": None}


def refuseUnread(args, flags, task):
    """DataError naming the first of ``flags`` (name -> default) given to ``task``, which does not read it."""
    for name, default in flags.items():
        if getattr(args, name) != default:
            raise DataError(f"--{name.replace('_', '-')} is not read by --task {task}: leave it out")


def applyTaskDefaults(args):
    """Fill the flags left out with the task's defaults (classify leaves its own to checks.fillDefaults and the
    checkpoint); refuse a model or data set the task cannot train."""
    defaults = TASKS[args.task]
    if args.task == "text" and args.resume:
        defaults = TaskDefaults(None, None, None, defaults.epochs, defaults.batchSize)  # the checkpoint's: texttask
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
    if args.task == "text":  # its seed: the checkpoint's on a resume, else 0 (minidl.cli.texttask)
        refuseUnread(args, FIT_FLAGS, args.task)
    else:
        refuseUnread(args, TEXT_FLAGS, args.task)


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
    lock = OutLock(args.out) if nodeinfo is None or nodeinfo.isRoot else None  # rank 0 alone writes in --out
    try:
        if args.task == "text":
            if nodeinfo is not None:
                raise DataError("--task text trains on one process: run it without mpiexec")
            return runTextTask(args, lock)
        resumeReport, status = checkOnEveryRank(nodeinfo, lambda: checkRun(args, lock),
                                                lambda: {name: getattr(args, name) for name in RANK_SETTINGS})
        if status is not None:
            return status
        with nodeinfo.abortOnError() if nodeinfo is not None else contextlib.nullcontext():
            return train(args, nodeinfo, resumeReport)
    finally:
        if lock is not None:
            lock.release()


def lockOut(lock, early):
    """Take --out's lock (``lock``: None on ranks other than 0): ``early``, before the checks, only when the folder
    exists already (a run there is refused at once, naming its pid); otherwise after them, making the folder."""
    if lock is not None and (not early or os.path.isdir(lock.folder)):
        lock.acquire(print)


def checkRun(args, lock=None):
    """Everything about the flags and the checkpoint in --out, before anything is built or written (no
    collective runs here), and --out locked for this run; returns the line reporting the flags a resume applies
    over the checkpoint's settings."""
    lockOut(lock, early=True)
    protectRun(args.out, RUN_FILES, args.resume, args.overwrite)
    path = os.path.join(args.out, CHECKPOINT_NAME)
    report = ""
    if args.resume:
        report = resumeFlags(args, readCheckpointSummary(path), path)
    else:
        fillDefaults(args)
    checkFlags(args)
    makeOptimizer(args.optimizer, args.lr)  # refuses a learning rate out of the optimizer's range
    lockOut(lock, early=False)
    return report


def checkFlags(args):
    """Errors in combinations of flags, before anything is loaded or written."""
    checkImageFlags(args, MODELS[args.model].flat)
    if not isImageSource(args.data) and args.data != "digits" and args.data_dir is None:
        raise DataError(f"--data {args.data} reads the files you downloaded: name their folder with --data-dir")
    if args.data == "digits" and args.data_dir is not None:
        raise DataError("--data-dir is for --data mnist, fashion-mnist or cifar10; digits need no files")
    if args.warmup and args.schedule != "cosine":
        raise OptimizerError("--warmup goes with --schedule cosine")
    if args.warmup >= planEpochs(args):
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
    """The schedule of ``--schedule`` for a run of ``--epochs`` epochs of ``steps`` steps (a resumed run: the
    epochs its checkpoint's schedule was planned over), and when it steps."""
    epochs = planEpochs(args)
    total = epochs * steps
    rate = getattr(optimizer, rateName(optimizer))
    if args.schedule == "cosine":
        return CosineSchedule(optimizer, total, warmup=args.warmup * steps), "step"
    if args.schedule == "onecycle":
        return OneCycleSchedule(optimizer, rate, total), "step"
    if args.schedule == "step":
        return StepSchedule(optimizer, max(1, epochs // 3)), "epoch"
    if args.schedule == "exponential":
        return ExponentialSchedule(optimizer, 0.01 ** (1 / epochs)), "epoch"
    if args.schedule == "plateau":
        return PlateauSchedule(optimizer, factor=0.5, patience=2), "epoch"
    return None, "epoch"


def precision(fit):
    """The loss scale and the steps skipped so far, for an epoch's line (nothing without a loss scaler)."""
    optimizer = fit.trainer.optimizer
    scaler = optimizer.lossScaler
    return "" if scaler is None else f"  loss scale {scaler.scale:g}  skipped {optimizer.skippedSteps}"


def epochRate(fit, entry):
    """The learning rate of an epoch's line: the rate it started with, and for a per-step schedule the one it
    ended with too (``0..0.05`` in a warmup)."""
    start = entry["learnRate"]
    if fit.schedule is None or fit.scheduleEvery != "step":
        return f"{start:.4g}"
    return f"{start:.4g}..{fit.schedule.learnRate:.4g}"


class PrintEpochs(Callback):
    """One line per epoch on standard output (the run's header and where it resumed: RunSettings)."""

    def __init__(self, say, epochs):
        self.say, self.epochs = say, epochs

    def onEpochEnd(self, fit, entry):
        self.say(f"epoch {entry['epoch']:3d}/{self.epochs}  train error {entry['trainError']:.4f}  val error "
                 f"{entry['valError']:.4f}  val accuracy {entry['valAccuracy']:.2%}  lr {epochRate(fit, entry)}  "
                 f"{entry['seconds']:.2f} s  {entry['samplesPerSecond']:.0f} samples/s{precision(fit)}", flush=True)


def describeSchedule(fit, epochs):
    """The schedule of the header: its type, the base rate it starts from and its plan."""
    schedule = fit.schedule
    if schedule is None:
        return "constant rate"
    warmup = getattr(schedule, "warmup", 0)
    plan = "" if epochs is None else f" over {epochs} epochs" + (f" after a warmup of {warmup} steps" if warmup else "")
    return f"{schedule!r} from {schedule.baseLearnRate:g}{plan}"


def makeCallbacks(args, say, resumeReport="", header=None):
    """Printing, the run's settings (and its header, printed once a resumed run is restored), checkpoints, the
    CSV log, and the optional early stopping and TensorBoard log."""
    path = os.path.join(args.out, CHECKPOINT_NAME)
    callbacks = [
        StopOnDivergence(), PrintEpochs(say, args.epochs),
        RunSettings(args, say, resumeReport, header=header, checkpointPath=path),
        PeriodicCheckpoint(path, everySteps=args.checkpoint_steps, keep=os.path.join(args.out, KEPT_NAME)),
        BestCheckpoint(os.path.join(args.out, BEST_NAME)), CsvLog(os.path.join(args.out, LOG_NAME)),
    ]
    if args.early_stop is not None:
        callbacks.append(EarlyStopping(patience=args.early_stop))
    if args.tensorboard:
        callbacks.append(TensorBoardLog(os.path.join(args.out, TENSORBOARD_NAME)))
    return callbacks


def runRecord(args, training, validation, pipeline, nodeinfo=None):
    """The run's manifest (its settings: the flags as the checks filled them and the number of MPI ranks, which
    sets the batch of a step; its data: the arrays' hashes, or for image files the hash of their names, labels and
    contents) and its digest log, both in --out (see ``minidl verify``)."""
    settings = {name: value for name, value in sorted(vars(args).items())
                if value is None or isinstance(value, (bool, int, float, str))}
    settings["ranks"] = 1 if nodeinfo is None else nodeinfo.gridsize
    data = {"images": imageSourceHash(pipeline.source)} if pipeline is not None else {
        "trainData": training[0], "trainLabels": training[1], "valData": validation[0], "valLabels": validation[1]}
    return [Manifest(os.path.join(args.out, MANIFEST_NAME), seed=args.seed, data=data, settings=settings),
            Digests(os.path.join(args.out, DIGESTS_NAME), everySteps=args.digest_steps)]


def writeReport(report, out, say):
    """Print the confusion matrix and per-class table, and write them beside the checkpoint (atomically)."""
    matrix = "\n".join(" ".join(f"{count:6d}" for count in row) for row in report.confusion)
    text = (f"confusion matrix (rows: true class, columns: predicted class)\n{matrix}\n\n{report.table()}\n"
            f"accuracy {report.accuracy:.4f}\n")
    say(text, end="")
    base = os.path.join(out, REPORT_NAME)
    writeAtomically(base + ".txt", text.encode(), CheckpointError)
    writeAtomically(base + ".json", json.dumps(report.toDict(), indent=1).encode(), CheckpointError)
    say(f"report: {base}.txt, {base}.json")


def openData(args, flat, nodeinfo):
    """(training, validation, sampleShape, classes, pipeline) of ``--data``: host arrays ``(data, labels)`` and
    pipeline None for the data sets in memory, or ImageLoaders ``(loader, None)`` and ``loader`` and their
    ImagePipeline for image files."""
    if isImageSource(args.data):
        if nodeinfo is not None:
            raise DataError("image files train on one process: run it without mpiexec")
        pipeline, trainPart, valPart = openImageData(args)
        return (trainPart, None), valPart, trainPart.sampleShape, len(trainPart.classes), pipeline
    data = loadData(args, flat)
    keep, keepVal = capSamples(len(data.trainData), "training samples"), capSamples(len(data.valData),
                                                                                     "validation samples")
    trainData, valData = (array.astype(args.dtype, copy=False) for array in (data.trainData[:keep],
                                                                             data.valData[:keepVal]))
    return ((trainData, data.trainLabels[:keep]), (valData, data.valLabels[:keepVal]), data.trainData.shape[1:],
            data.classes, None)


def train(args, nodeinfo, resumeReport=""):
    isRoot = nodeinfo is None or nodeinfo.isRoot
    say = print if isRoot else lambda *args, **kwargs: None
    spec = MODELS[args.model]
    backend.seed(args.seed)
    training, validation, sampleShape, classes, pipeline = openData(args, spec.flat, nodeinfo)
    with pipeline if pipeline is not None else contextlib.nullcontext():
        return trainOn(args, nodeinfo, resumeReport, say, training, validation, sampleShape, classes, pipeline)


def trainOn(args, nodeinfo, resumeReport, say, training, validation, sampleShape, classes, pipeline):
    isRoot = nodeinfo is None or nodeinfo.isRoot
    fit = buildFit(args, nodeinfo, resumeReport, say, training, validation, sampleShape, classes, pipeline)
    kept = os.path.join(args.out, KEPT_NAME)
    madeKept = not os.path.isdir(kept)
    try:
        os.makedirs(kept, exist_ok=True)
    except OSError as error:
        raise CheckpointError(f"--out: cannot make the folder {args.out}: {error}") from error
    path = os.path.join(args.out, CHECKPOINT_NAME)
    if pipeline is not None and pipeline.source.ignored:
        say(f"{pipeline.source.ignored} files of {args.data} are not .jpg, .jpeg or .png images: left out")

    def removeKept():
        if madeKept:  # refused by the fit loop's checks, or stopped before its first checkpoint: no trace
            with contextlib.suppress(OSError):
                os.rmdir(kept)

    status = None
    try:
        if nodeinfo is not None:  # the fit loop's checks on every rank first, so that a user error is printed once
            _, status = checkOnEveryRank(nodeinfo, lambda: fit.check(*training, args.epochs, validation))
        if status is None:
            fit.run(*training, args.epochs, validation, resume=path if args.resume else None)
    except BaseException:
        removeKept()
        raise
    if status is not None:  # another rank's error, printed by rank 0
        removeKept()
        return status
    say(f"checkpoint: {path}")
    if fit.validator.report is None:  # a resumed run that had already ended: no epoch validated the network yet
        if pipeline is not None:
            fit.validator.validateFromLoader(validation)
        else:
            fit.validator.validateFromHost(*validation)
    if pipeline is not None:
        skipped = training[0].skipped + validation.skipped
        if skipped:
            say(f"{len(skipped)} images could not be decoded and were left out; the first: {skipped[0]}")
    if isRoot:
        writeReport(fit.validator.report, args.out, say)
    if args.plot and isRoot:
        from minidl.cli.plot import plotLog

        plotLog(os.path.join(args.out, LOG_NAME), args.plot)
        say(f"plot: {args.plot}")
    return 0


def buildFit(args, nodeinfo, resumeReport, say, training, validation, sampleShape, classes, pipeline):
    """The run's network, optimizer, schedule, Trainer and callbacks, as a Fit not yet run (also what ``minidl
    verify --bisect`` rebuilds a run from)."""
    isRoot = nodeinfo is None or nodeinfo.isRoot
    module = MODELS[args.model].build(sampleShape, classes).calcMode(args.dtype)
    scaler = minidl.optim.LossScaler() if args.dtype == "float16" else None
    optimizer = makeOptimizer(args.optimizer, args.lr, nodeinfo).setupOn(module, useGlobalState=True,
                                                                         lossScaler=scaler)
    optimizer.nonFinite = args.nonfinite
    augment = None
    if pipeline is not None:
        augment = pipeline.job.augment
    elif args.augment:
        augment = Augment(crop=max(1, sampleShape[-1] // 8), flip=args.data == "cifar10")
    trainer = Trainer(module, CrossEntropy(), optimizer, batchsize=args.batch_size, verbose=isRoot,
                      augment=None if pipeline is not None else augment, capture=args.capture)
    schedule, every = makeSchedule(args, optimizer, stepsPerEpoch(len(training[0]), args.batch_size, nodeinfo))
    ranks = "" if nodeinfo is None else f", {nodeinfo.gridsize} ranks ({nodeinfo.transport})"
    images = "" if pipeline is None else (f", {len(training[0].classes)} classes, {'x'.join(map(str, sampleShape))} "
                                          f"images, {args.workers} workers")
    valCount = len(validation[0] if pipeline is None else validation)

    def header(fit):
        """The run's first line, once a resumed run is restored: the optimizer's state as it continues (its step
        count), the base rate a schedule starts from rather than its rate at step 0 (0 in a warmup)."""
        attrs = optimizer.getAttrDict()
        if schedule is not None:
            attrs[schedule.rateName] = schedule.baseLearnRate
        hyper = ", ".join(f"{key}={value:g}" for key, value in attrs.items())
        planned = planEpochs(args) if args.schedule in HORIZON_SCHEDULES else None
        return (f"{args.model} on {args.data} ({len(training[0])} train, {valCount} validation{images}), "
                f"{optimizer!r}({hyper}), {describeSchedule(fit, planned)}, "
                f"{augment or 'no augmentation'}, batch {args.batch_size}, {args.dtype}, {backend.name}{ranks}")

    callbacks = makeCallbacks(args, say, resumeReport, header) + runRecord(args, training, validation, pipeline,
                                                                                 nodeinfo)
    if pipeline is not None:
        callbacks.append(ImageSettings(args))
    return Fit(trainer, schedule=schedule, scheduleEvery=every, verbose=False,  # PrintEpochs says more
               callbacks=callbacks)


def runTextTask(args, lock):
    """The text task (minidl.cli.texttask), outside the fit loop: it samples its windows, it has no classes."""
    from minidl.cli.texttask import trainText

    path = os.path.join(args.out, CHECKPOINT_NAME)
    lockOut(lock, early=True)
    protectRun(args.out, [CHECKPOINT_NAME, MANIFEST_NAME, DIGESTS_NAME], args.resume, args.overwrite)
    lockOut(lock, early=False)
    backend.seed(0 if args.seed is None else args.seed)  # a resumed run's random state is the checkpoint's
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as error:
        raise CheckpointError(f"--out: cannot make the folder {args.out}: {error}") from error
    return trainText(args, makeOptimizer, saveCheckpoint, loadCheckpoint, path, print)
