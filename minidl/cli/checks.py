"""Checks the ``minidl train`` command runs before it builds or trains anything.

* ``plotFile``: the picture's folder exists and matplotlib can write its file type;
* ``protectRun``: a new run never replaces a checkpoint or another run's files unless ``--overwrite`` says so;
* ``resumeFlags``: with ``--resume`` the run's settings come from the checkpoint (kept there by the
  ``RunSettings`` callback); a flag that differs is applied and reported in one line (``--batch-size``,
  ``--lr``, for a run without a schedule) or refused (``--model``, ``--optimizer``, ``--data``, ``--schedule``,
  ``--seed``: they made the checkpoint what it is; a schedule was planned for its batch size and rate, and
  keeps its horizon: more ``--epochs`` than it was planned over are refused);
* ``checkOnEveryRank``: under MPI, every rank runs the checks and an error on any of them is printed once; the
  ranks compare their settings in the same collective and refuse to train with different ones.
"""

import argparse
import os

from minidl.errors import CallbackError, CheckpointError, DistributedError, MinidlError
from minidl.train.callbacks import Callback

# The settings a checkpoint of the command remembers (RunSettings), by argparse name, with their defaults.
REMEMBERED = {"model": "mlp", "optimizer": "adagrad", "data": "digits", "schedule": None, "batch_size": 128,
              "seed": 0}
REFUSED_ON_RESUME = ("model", "optimizer", "data", "schedule", "seed")
HORIZON_SCHEDULES = ("cosine", "onecycle", "step", "exponential")  # planned over the run's --epochs
PLAN = ("epochs", "warmup")  # what RunSettings keeps besides REMEMBERED: the schedule's plan
RATE_NAMES = ("learnRate", "alpha")


def flagName(name):
    return "--" + name.replace("_", "-")


def plotFile(text):
    """An argparse type: a picture path whose folder exists and whose suffix matplotlib can write."""
    where = os.path.dirname(os.path.abspath(text))
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    if not os.path.isdir(where):
        raise argparse.ArgumentTypeError(f"no folder {where} to write {os.path.basename(text)} in")
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise argparse.ArgumentTypeError("needs matplotlib: pip install 'minidl[datasets]'") from None
    supported = sorted(FigureCanvasBase.get_supported_filetypes())
    suffix = os.path.splitext(text)[1].lstrip(".").lower()
    if suffix not in supported:
        raise argparse.ArgumentTypeError(
            f"{text}: matplotlib writes the file types {', '.join(supported)}; got {suffix or 'no suffix'!r}"
        )
    return text


def protectRun(folder, names, resume, overwrite):
    """CheckpointError when a new run (neither ``resume`` nor ``overwrite``) would replace files of another run:
    the checkpoint (``names[0]``) or any other of the files ``names`` it writes in ``folder``."""
    if resume or overwrite:
        return
    checkpoint = os.path.join(folder, names[0])
    if os.path.lexists(checkpoint):
        raise CheckpointError(
            f"{checkpoint} already holds a checkpoint: pass --resume to continue its run, or --overwrite to replace "
            "it with a new one"
        )
    found = [name for name in names[1:] if os.path.lexists(os.path.join(folder, name))]
    if found:
        raise CheckpointError(
            f"{folder} holds files of another run ({', '.join(found)}), though not its checkpoint: give this run "
            "another --out, or pass --overwrite to replace them"
        )


class RunSettings(Callback):
    """Keeps the command's settings (REMEMBERED, and PLAN: the epochs and warmup a schedule is planned over) in
    the checkpoint, as its callback state. At the run's start, once a resumed run is restored: sets
    the learning rate given with ``--lr`` over the checkpoint's, prints ``header(fit)`` (the run as it now is),
    where it resumed from and ``report`` (see resumeFlags)."""

    def __init__(self, args, say, report="", header=None, checkpointPath=None):
        self.settings = {name: getattr(args, name) for name in REMEMBERED}
        self.settings.update(epochs=planEpochs(args), warmup=args.warmup)
        self.learnRate = args.lr if args.resume else None
        self.say, self.report, self.header, self.checkpointPath = say, report, header, checkpointPath

    def onFitStart(self, fit):
        if (fit.epoch or fit.position) and self.learnRate is not None:
            applyLearnRate(fit.trainer.optimizer, self.learnRate)
        if self.header is not None:
            self.say(self.header(fit))
        if fit.epoch or fit.position:
            inside = f", at batch {fit.position} of epoch {fit.epoch + 1}" if fit.position else ""
            self.say(f"resumed from {self.checkpointPath} after epoch {fit.epoch}{inside}")
        if (fit.epoch or fit.position) and self.report:
            self.say(self.report)

    def getAttrDict(self):
        return dict(self.settings)

    def checkAttrDict(self, attrs):
        names = set(REMEMBERED)
        if not isinstance(attrs, dict) or set(attrs) not in (names, names | set(PLAN)):  # older runs: no plan
            raise CallbackError(f"{self!r} state must have the entries {sorted(names | set(PLAN))}, got "
                                f"{attrs!r:.200}")

    def setAttrDict(self, attrs):
        """The checkpoint's settings were compared with the flags before the run (resumeFlags): keep this run's."""
        self.checkAttrDict(attrs)


def savedSettings(summary):
    """The RunSettings state a checkpoint's extra holds, or {} for a checkpoint written otherwise."""
    extra = summary.extra if isinstance(summary.extra, dict) else {}
    callbacks = extra.get("callbacks") if isinstance(extra.get("callbacks"), list) else []
    for pair in callbacks:
        if isinstance(pair, list) and len(pair) == 2 and pair[0] == RunSettings.__name__ and isinstance(pair[1], dict):
            return pair[1]
    return {}


def resumeFlags(args, summary, path):
    """Fill the flags left out with the checkpoint's (``summary``: a CheckpointSummary) or the defaults; refuse
    a flag that contradicts the checkpoint; return the one line that reports the flags applied over the
    checkpoint's settings (empty when none)."""
    if isinstance(summary.extra, dict) and summary.extra.get("task") == "text":
        raise CheckpointError(f"{path} is a checkpoint of --task text: resume it with --task text")
    saved = {**savedSettings(summary), "optimizer": summary.optimizer.lower()}
    scheduled = saved.get("schedule") is not None or args.schedule is not None
    changes = []
    for name, default in REMEMBERED.items():
        given = getattr(args, name)
        if given is None:
            setattr(args, name, saved.get(name, default))
        elif name in saved and given != saved[name]:
            if name in REFUSED_ON_RESUME or scheduled:
                raise CheckpointError(
                    f"{flagName(name)} {given} contradicts the checkpoint {path}, whose run has "
                    f"{flagName(name)} {saved[name]}: leave the flag out to resume it, or pass --overwrite to "
                    "start a new run"
                )
            changes.append(f"{flagName(name)} {given} (the checkpoint's run had {saved[name]})")
    position = summary.extra.get("position") if isinstance(summary.extra, dict) else None
    if isinstance(position, dict) and args.batch_size != saved.get("batch_size", args.batch_size):
        raise CheckpointError(f"--batch-size {args.batch_size}: the checkpoint {path} was written inside an epoch, "
                              f"after {position.get('batch')} batches of {saved['batch_size']}, which the resumed "
                              "epoch skips; batches of another size would skip other samples and repeat some: "
                              f"resume with --batch-size {saved['batch_size']} (it may change at a later resume "
                              "from the end of an epoch)")
    checkHorizon(args, saved, path)
    rate = next((summary.attrs[name] for name in RATE_NAMES if name in summary.attrs), None)
    if args.lr is not None and rate is not None and args.lr != rate:
        if scheduled:
            raise CheckpointError(f"--lr {args.lr:g} contradicts the checkpoint {path}, whose schedule drives the "
                                  "learning rate: leave the flag out to resume it, or pass --overwrite to start a "
                                  "new run")
        changes.append(f"--lr {args.lr:g} (the checkpoint's run had {rate:g})")
    if args.warmup is None:
        args.warmup = 0
    return f"resuming with {', '.join(changes)}" if changes else ""


def planEpochs(args):
    """The epochs the run's schedule is planned over: the checkpoint's plan for a resumed run, else --epochs."""
    return getattr(args, "plannedEpochs", None) or args.epochs


def checkHorizon(args, saved, path):
    """A resumed schedule keeps its plan (as PyTorch's schedulers restore their horizon): ``args.plannedEpochs``
    and ``args.warmup`` become the checkpoint's; more ``--epochs`` than planned, or another ``--warmup``, are
    refused (fewer epochs end the run early on the same plan)."""
    if args.schedule not in HORIZON_SCHEDULES:
        return
    warmup = saved.get("warmup") or 0
    if args.warmup is not None and args.warmup != warmup:
        raise CheckpointError(f"--warmup {args.warmup} contradicts the checkpoint {path}, whose schedule was planned "
                              f"with --warmup {warmup}: leave the flag out to resume it, or pass --overwrite to start "
                              "a new run")
    args.warmup = warmup
    planned = saved.get("epochs")
    if planned is None:
        raise CheckpointError(f"{path} was written by an older minidl that did not keep the horizon of its --schedule "
                              f"{args.schedule}: resume it with that version, or pass --overwrite to start a new run")
    if args.epochs > planned:
        raise CheckpointError(
            f"--epochs {args.epochs} is more than the {planned} epochs the checkpoint's --schedule {args.schedule} "
            f"was planned over ({path}): a resumed schedule keeps its plan, whose rate ends at epoch {planned}; "
            f"resume with --epochs {planned} or fewer, or pass --overwrite to start a new run of {args.epochs} epochs"
        )
    args.plannedEpochs = planned


def fillDefaults(args):
    """A new run: the flags left out take their defaults."""
    for name, default in REMEMBERED.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.warmup is None:
        args.warmup = 0


def applyLearnRate(optimizer, learnRate):
    """Set the optimizer's learning rate (``learnRate``, or ``alpha`` for Adam-like ones) after a resume."""
    attrs = optimizer.getAttrDict()
    for name in RATE_NAMES:
        if name in attrs:
            optimizer.setAttrDict({name: learnRate})
            return


def checkOnEveryRank(nodeinfo, check, settings=dict):
    """``(check(), None)``, ``check()`` (which must run no collective) having passed on every rank, and every rank
    having the same ``settings()`` (a dict: flag name -> value, taken after the check), compared in the same first
    collective. When ``check()`` raised a MinidlError on any rank, rank 0 raises that of the lowest failing rank;
    when a rank's settings differ from rank 0's, rank 0 raises a DistributedError naming the first difference;
    either way the other ranks get ``(None, 1)``, the exit status to return quietly, so that the error is printed
    once (rank 0's error is marked ``agreed``: inside ``NodeInfo.abortOnError`` it ends rank 0 alone, as the others
    end by themselves). Without MPI (``nodeinfo`` None) a MinidlError of ``check()`` is simply raised."""
    if nodeinfo is None:
        return check(), None
    try:
        result, problem = check(), None
    except MinidlError as error:
        result, problem = None, error
    gathered = nodeinfo.allGather((None, settings()) if problem is None else (str(problem), None))
    failed = [(rank, message) for rank, (message, _) in enumerate(gathered) if message is not None]
    mismatch = None if failed else firstMismatch([values for _, values in gathered])
    if not failed and mismatch is None:
        return result, None
    if not nodeinfo.isRoot:
        return None, 1
    if mismatch is not None:
        rank, name, value, expected = mismatch
        error = DistributedError(f"rank {rank} of {nodeinfo.gridsize} runs with {flagName(name)} {value}, rank 0 "
                                 f"with {flagName(name)} {expected}: every rank must train with the same settings")
    else:
        rank, message = failed[0]
        error = problem if problem is not None and rank == 0 else \
            MinidlError(f"rank {rank} of {nodeinfo.gridsize}: {message}")
    error.agreed = True
    raise error


def firstMismatch(settingsByRank):
    """``(rank, name, value, rank 0's value)`` of the first setting in which a rank differs from rank 0, or None."""
    first = settingsByRank[0]
    for rank, values in enumerate(settingsByRank[1:], start=1):
        for name in sorted(set(first) | set(values)):
            if values.get(name) != first.get(name):
                return rank, name, values.get(name), first.get(name)
    return None
