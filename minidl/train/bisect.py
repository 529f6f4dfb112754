"""Where exactly two runs part: ``bisectRuns(folderA, folderB, rebuild)`` replays both from their last common
checkpoint with a digest after every step (``minidl verify --bisect``).

1. ``compareRuns`` names the first logged step ``S`` where the runs' digests differ.
2. The runs' kept checkpoints (``checkpoints/step-<t>.safetensors``, see ``PeriodicCheckpoint(keep=...)``) at the
   steps both keep, up to ``S``, are compared from the latest down: the first pair whose tensors and random
   state are the same bytes (``checkpointFingerprint``) is the common checkpoint ``K``.
3. Each run is rebuilt (``rebuild(folder)``: a context manager giving a ``Replay``), restored from its own
   checkpoint at ``K`` and trained on from there with the callbacks that write no file. After every optimizer
   step a ``StepRecorder`` records the digest of every module's forward output of that step (in the order the
   forward pass finishes them: a container after the modules inside it) and of every Variable after it (each
   parameter followed by its optimizer state, in the model's parameter order, then the module's buffers); at a
   logged step it also checks the run's own logged digest, which says whether the replay is faithful.
4. Run A is replayed to ``S``, run B until its record first differs from A's. The first step whose Variables
   differ, the first Variable that differs after it and the first module whose output differs in it are the
   answer; when every module's output agrees in that step the runs parted in the backward pass or the update.

A replay uses the settings of a run's last segment (a run resumed with other flags is replayed with the flags of
its last resume): when that is not what happened between ``K`` and ``S`` the run's replay misses its own log and
the report says so.
"""

import hashlib
import os
from dataclasses import dataclass, field

import numpy

from minidl.backend import toHost, xp
from minidl.errors import CheckpointError
from minidl.tensorfile import readTensors
from minidl.train.callbacks import KEPT_FILE, KEPT_NAME
from minidl.train.checkpoint import CHECKPOINT_FORMAT
from minidl.train.compare import compareRuns
from minidl.train.digest import LANES, digestKer, parameterDigests
from minidl.train.digestlog import readDigests

WORDS = {1: numpy.uint8, 2: numpy.uint16, 4: numpy.uint32, 8: numpy.uint64}


@dataclass
class Replay:
    """What ``rebuild(folder)`` gives: the run's Fit (built as the run's was, not yet run), its training data
    and labels (labels None for a loader), its validation data and the run's planned epochs."""

    fit: object
    data: object
    labels: object
    validation: object
    epochs: int


def keptCheckpoints(folder):
    """{step: path} of the checkpoints a run's folder keeps; CheckpointError when it keeps none."""
    kept = os.path.join(folder, KEPT_NAME)
    names = os.listdir(kept) if os.path.isdir(kept) else []
    steps = {int(match.group(1)): os.path.join(kept, name) for name in names
             if (match := KEPT_FILE.fullmatch(name))}
    if not steps:
        raise CheckpointError(f"{folder} keeps no checkpoints ({KEPT_NAME}/step-<t>.safetensors): --bisect replays "
                              "from them; train the run with a minidl that keeps them")
    return steps


def checkpointFingerprint(path):
    """(shapes, sha256 hex) of a checkpoint: {tensor name: (dtype, shape)}, and a hash of every tensor's bytes,
    the optimizer's class and the random state: the state a replay starts from (not the optimizer's
    hyperparameters, which each run's replay sets as the run did, nor the history, whose times differ)."""
    tensors, metadata = readTensors(path, CHECKPOINT_FORMAT)
    digest = hashlib.sha256()
    for key in ("optimizer", "random"):
        digest.update(f"{key}={metadata.get(key)};".encode())
    shapes = {}
    for name in sorted(tensors):
        array = numpy.ascontiguousarray(tensors[name])
        shapes[name] = (array.dtype.str, array.shape)
        digest.update(f"{name}:{array.dtype.str}{array.shape};".encode())
        digest.update(array.tobytes())
    return shapes, digest.hexdigest()


def commonCheckpoint(folderA, folderB, limit):
    """(step, path in A, path in B) of the latest checkpoint both runs keep, at a step <= ``limit``, that is the
    same in both; CheckpointError when there is none, or when the runs' checkpoints hold other tensors or shapes
    (other models)."""
    keptA, keptB = keptCheckpoints(folderA), keptCheckpoints(folderB)
    steps = sorted((step for step in set(keptA) & set(keptB) if step <= limit), reverse=True)
    for step in steps:
        (shapesA, hashA), (shapesB, hashB) = checkpointFingerprint(keptA[step]), checkpointFingerprint(keptB[step])
        if shapesA != shapesB:
            names = sorted(name for name in set(shapesA) | set(shapesB) if shapesA.get(name) != shapesB.get(name))
            raise CheckpointError(f"the runs train different models: their checkpoints at step {step} differ in the "
                                  f"tensors {names[:5]} (names, dtypes or shapes)")
        if hashA == hashB:
            return step, keptA[step], keptB[step]
    raise CheckpointError(f"no checkpoint at or before step {limit} is the same in both runs (A keeps the steps "
                          f"{sorted(keptA)[:8]}, B {sorted(keptB)[:8]}): nothing to replay from")


def arrayDigest(array):
    """A hex digest of one device or host array's dtype, shape and bits: the digest kernel's fold on the device,
    only its lanes read back."""
    words = xp.ascontiguousarray(array).reshape(-1).view(WORDS[array.dtype.itemsize])
    lanes = xp.zeros(LANES, dtype=numpy.uint64)
    digestKer(words, words.size, LANES, lanes, size=LANES)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape};".encode())
    digest.update(toHost(lanes).astype("<u8").tobytes())
    return digest.hexdigest()[:32]


def outputArrays(output):
    """The arrays of a module's output: one array, or those of a list or tuple of outputs."""
    if isinstance(output, (list, tuple)):
        return [array for item in output for array in outputArrays(item)]
    return [output]


def namedModules(module, prefix=""):
    """(qualified name, module) of ``module`` and of every module inside it, parents first; the network itself
    is named "network", the others as their Variables' names begin ("0", "1.conv")."""
    yield prefix or "network", module
    for name, child in module.children().items():
        yield from namedModules(child, f"{prefix}.{name}" if prefix else str(name))


@dataclass
class StepRecord:
    """One replayed step: the optimizer's step count after it, the epoch it is in (1-based), [(module name,
    output digest)] of its forward pass and [(Variable name, digest)] after its update."""

    step: int
    epoch: int
    outputs: list
    variables: list


class StopReplay(Exception):
    """Raised by a StepRecorder once the replay has gone far enough."""


class StepRecorder:
    """Records a StepRecord after every optimizer step of ``fit`` (its trainer's ``step`` and its modules'
    ``updData`` wrapped on the instances until ``detach()``), stops the replay (StopReplay) after step
    ``until`` or after the first step whose Variables differ from ``reference`` (records by step), and checks
    the run's ``logged`` digests ({step: digests}) at the steps it logged (``unfaithful``: the first step where
    the replay misses them)."""

    def __init__(self, fit, until, logged, reference=None):
        self.fit, self.until, self.logged, self.reference = fit, until, logged, reference
        self.records, self.outputs, self.capturing, self.unfaithful = [], [], False, None
        trainer = fit.trainer
        self.step, original = trainer.__dict__.get("step"), trainer.step

        def step(data, target):
            self.outputs, self.capturing = [], True
            try:
                error = original(data, target)
            finally:
                self.capturing = False
            self.record()
            return error

        trainer.step = step
        self.modules = []  # (module, the updData it had on the instance, or None)
        for name, module in namedModules(trainer.module):
            if any(module is other for other, _ in self.modules):
                continue  # a module reached twice is watched once, under its first name
            self.modules.append((module, module.__dict__.get("updData")))
            module.updData = self.watch(name, module.updData)

    def watch(self, name, updData):
        def recorded(data):
            output = updData(data)
            if self.capturing:
                self.outputs.append((name, [arrayDigest(array) for array in outputArrays(output)]))
            return output

        return recorded

    def detach(self):
        """Put the trainer's step and the modules' updData back as they were."""
        if self.step is None:
            del self.fit.trainer.step
        else:
            self.fit.trainer.step = self.step
        for module, updData in self.modules:
            if updData is None:
                del module.updData
            else:
                module.updData = updData

    def variableDigests(self):
        module, optimizer = self.fit.trainer.module, self.fit.trainer.optimizer
        state = optimizer.getStateTable()
        digests, used = [], set()
        for name, var in module.getVarTable().items():
            digests.append((name, arrayDigest(var.data)))
            for key, array in state.items():
                if key.startswith(name + ".") and key not in used:
                    digests.append((key, arrayDigest(array)))
                    used.add(key)
        digests += [(key, arrayDigest(array)) for key, array in state.items() if key not in used]
        return digests + [(name, arrayDigest(array)) for name, array in module.getBufferTable().items()]

    def record(self):
        optimizer = self.fit.trainer.optimizer
        optimizer.readGuard()  # the true step count, as the digest log's (a skipped step counts in t until read)
        step = optimizer.t
        record = StepRecord(step, self.fit.epoch + 1, self.outputs, self.variableDigests())
        self.records.append(record)
        if step in self.logged and self.unfaithful is None and parameterDigests(optimizer) != self.logged[step]:
            self.unfaithful = step
        other = None if self.reference is None else self.reference.get(step)
        if step >= self.until or (other is not None and other.variables != record.variables):
            raise StopReplay


def replay(run, checkpoint, until, logged, reference=None, prepare=None, label=""):
    """Restore ``run`` (a Replay) from ``checkpoint`` and train it on, recording every step (a StepRecorder),
    until step ``until`` or its first difference from ``reference``; returns the recorder. ``prepare(label,
    fit)`` runs once the run is restored, before its first step."""
    fit = run.fit
    fit.epochs = run.epochs
    fit.checkData(run.data, run.labels, run.validation)
    fit.restore(checkpoint)
    fit.callbacks = [callback for callback in fit.callbacks if not callback.writesFiles]  # a replay writes nothing
    for callback in fit.active():
        callback.onFitStart(fit)
    if prepare is not None:
        prepare(label, fit)
    recorder = StepRecorder(fit, until, logged, reference)
    try:
        while fit.epoch < run.epochs and not fit.stop and fit.trainer.optimizer.t < until:
            fit.runEpoch(run.data, run.labels, run.validation)
    except StopReplay:
        pass
    finally:
        recorder.detach()
    return recorder


def firstDifference(pairsA, pairsB):
    """The first name whose digest differs between two [(name, digest)] lists (by position), or None."""
    for (nameA, digestA), (nameB, digestB) in zip(pairsA, pairsB):
        if nameA != nameB or digestA != digestB:
            return nameA
    if len(pairsA) != len(pairsB):
        return (pairsA if len(pairsA) > len(pairsB) else pairsB)[min(len(pairsA), len(pairsB))][0]
    return None


@dataclass
class Bisection:
    """What ``bisectRuns`` found: the logs' comparison, the common checkpoint's step, the first replayed step
    whose Variables differ (None: the replays agree up to the logged parting), the first Variable and module
    that differ there, and the first step where each run's replay missed its own log (None: faithful)."""

    comparison: object
    checkpoint: int = None
    until: int = None
    step: int = None
    epoch: int = None
    variable: str = None
    module: str = None
    unfaithful: dict = field(default_factory=dict)

    @property
    def identical(self):
        return self.comparison.identical

    def lines(self):
        out = self.comparison.lines()
        if self.comparison.parting is None:
            out.append("bisect: nothing to replay, the logs do not part")
            return out
        out.append(f"bisect: replayed both runs from their common checkpoint at step {self.checkpoint} to step "
                   f"{self.until}")
        if self.step is None:
            out.append(f"bisect: the replays agree at every step up to {self.until}: this process does not make "
                       "the difference the logs show")
        else:
            out.append(f"bisect: first differing step: {self.step} (epoch {self.epoch})")
            out.append(f"bisect: first differing Variable after it: {self.variable}")
            if self.module is None:
                out.append("bisect: every module's forward output agrees in that step: they part in the backward "
                           "pass or the update")
            else:
                out.append(f"bisect: first module whose forward output differs in that step: {self.module}")
        for label, step in sorted(self.unfaithful.items()):
            out.append(f"bisect: run {label}'s replay misses its own logged digest at step {step}: the replay is "
                       "not what the run did there (other code, device, settings or data)")
        return out


def bisectRuns(folderA, folderB, rebuild, prepare=None):
    """The Bisection of two run folders; ``rebuild(folder)`` is a context manager giving a run's Replay
    (``minidl.cli.verify`` rebuilds runs of ``minidl train``); ``prepare(label, fit)`` (label "A" or "B") runs on
    each rebuilt run before its replay."""
    comparison = compareRuns(folderA, folderB)
    result = Bisection(comparison)
    if comparison.parting is None:
        return result
    result.until = comparison.parting[0]["step"]
    result.checkpoint, pathA, pathB = commonCheckpoint(folderA, folderB, result.until)
    records = {}
    for label, folder, path in (("A", folderA, pathA), ("B", folderB, pathB)):
        logged = {line["step"]: line["digests"] for line in readDigests(os.path.join(folder, "digests.jsonl"))}
        with rebuild(folder) as run:
            recorder = replay(run, path, result.until, logged, records.get("A"), prepare, label)
        records[label] = {record.step: record for record in recorder.records}
        if recorder.unfaithful is not None:
            result.unfaithful[label] = recorder.unfaithful
    for step in sorted(records["B"]):
        recordA, recordB = records["A"].get(step), records["B"][step]
        if recordA is not None and recordA.variables != recordB.variables:
            result.step, result.epoch = step, recordB.epoch
            result.variable = firstDifference(recordA.variables, recordB.variables)
            result.module = firstDifference(recordA.outputs, recordB.outputs)
            break
    return result
