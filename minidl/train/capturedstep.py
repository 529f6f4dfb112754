"""CapturedStep: a training step (forward, cost, zeroed gradients, backward, update) recorded once for fixed shapes
and replayed without the Python of the modules, the cost and the optimizer (issue 25).

    step = minidl.capture(net, cost, optimizer)      # Trainer does it by default (capture=False turns it off)
    error = step(data, labels)                       # a float: the batch's error, as Trainer.step returns

On the CPU each input shape goes through five calls before its first replay, each of them a real step of the
training:
1. an ordinary step (a shape seen once, the last partial batch of an epoch, is never recorded);
2. a recorded step whose tape is thrown away: what a step makes once and keeps (Adam's corrections, the checks'
   records) is made there;
3. and 4. two recorded steps, compared call by call (``Tape.follow``): any difference between them (but in the
   numbers a replay reads again: ``liveValues``, the guard's and Adam's step, the random draws' counters), or an
   array the step read that no recorded call made and no earlier step kept, refuses the shape;
5. the check: from one state, an ordinary step and a replay of the same batch must leave every array the
   module, cost and optimizer keep and update in place (parameters, gradients, optimizer state, buffers, guard,
   error sums) and their counters with the same bytes; the state is then the replay's.
On a GPU (and the simulated device) a shape's second call captures its step as a CUDA graph
(``minidl.backend.devicegraph``: CuPy's stream capture, which runs nothing) and launches it, which takes that step;
the third is the check above, which also compares the numbers the captured kernels took with those of its
ordinary step (``frozenNumbers``: one that changed without reaching its kernel as a live value would be frozen in
the graph); the graph replays from the fourth. A step that syncs or copies host data to the
device while captured (CuPy refuses both in a capture) is refused, its state as it was before. The numbers a replay
reads again reach the graph's kernels through device memory (``minidl.backend.livevalues``), and the arrays the step
keeps from before its capture are held for the graph's life (a graph does not keep memory alive).
A refused shape runs ordinarily from then on, said once (a logged warning naming why). What a replay does on the
host is what an ordinary step does there: the optimizer counts the step and reads its guard when due
(``finishUpdate``), the cost counts the samples; a replay's random draws move the counter on themselves. On a GPU a
replay's error is a ``DeviceScalar`` of its own (one copy launched), as an ordinary step's.

What the recording reads, it reads at each replay: parameters updated in place, and the numbers a step passes
through ``liveValues`` (the optimizer's hyperparameters, so a schedule may change the rate at every step). Any other
number it keeps: so a change of a Variable's ``learnRate`` or ``wc``, of a number of a module (its train or eval
mode, a Dropout's rate), of the cost or of a hook, of the guard's mode or the loss scaler, or a rebound Variable,
starts every shape again; settings that change at every step turn capture off, said once. Data-parallel optimizers
run ordinarily.
"""

import logging
import types

import numpy

from minidl.backend import getRandomState, isGpu, setRandomState, toHost, xp
from minidl.backend.device import isArray
from minidl.backend.devicegraph import DeviceGraph
from minidl.backend.devicescalar import DeviceScalar
from minidl.backend.kernelrecord import compareSteps, recordingKernels
from minidl.backend.livevalues import CaptureLiveError, LiveValue
from minidl.backend.tape import CaptureError, Tape
from minidl.nn import Module
from minidl.nn.module import SETTING_TYPES
from minidl.train.datacheck import checkParts
from minidl.variable import Rebinds

log = logging.getLogger("minidl")

RECORDINGS = 3  # the recorded steps before the check: one thrown away, two compared
GIVE_UP_AFTER = 3  # settings changed this many times in a row before any replay turn capture off


def stepLaunches(module, cost, optimizer, data, target):
    """One step's work up to the host's part of the update: (the error, whether the step is guarded)."""
    error, grad = cost(module(data), target)
    optimizer.zeroGradParams()
    scaler = optimizer.lossScaler  # loss scaling: the optimizer unscales inside its update
    module.backward(grad if scaler is None else scaler.scaleGrad(grad), updGrad=False)
    return error, optimizer.launchUpdate()


def ordinaryStep(module, cost, optimizer, data, target):
    """One training step run as it is written (no capture): the batch's error (a ``DeviceScalar`` on a device, a
    float on the CPU)."""
    error, guarded = stepLaunches(module, cost, optimizer, data, target)
    optimizer.finishUpdate(guarded)
    return error if isGpu else float(error)


def stateObjects(*roots):
    """The minidl objects reachable from ``roots`` through attributes, lists, tuples and dicts, each once (the
    simulated device's arrays are arrays, not objects to look into)."""
    found, pending = {}, list(roots)
    while pending:
        value = pending.pop()
        if isinstance(value, (list, tuple)):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif (hasattr(value, "__dict__") and type(value).__module__.startswith("minidl") and not isArray(value)
              and not isinstance(value, (type, types.ModuleType, types.FunctionType, types.MethodType))
              and id(value) not in found):
            found[id(value)] = value
            pending.extend(vars(value).values())
    return list(found.values())


def arrayAttributes(obj):
    """(name, array) for each array attribute of ``obj`` (host or device) and each array in a list, tuple or dict
    attribute."""
    for name, value in vars(obj).items():
        if isArray(value):
            yield name, value
        elif isinstance(value, (list, tuple, dict)):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isArray(item):
                    yield (name, key), item


def numbersOf(obj, skip=()):
    """The numbers, flags and words among ``obj``'s attributes (what a module, cost or hook was set to)."""
    return id(obj), *((name, value) for name, value in vars(obj).items()
                      if type(value) in SETTING_TYPES and name not in skip)


def frozenNumbers(captured, ordinary):
    """Where the kernel calls of a captured step (``captured``) and of the next step, run ordinarily, differ but in
    their arrays and live values: the names ("kernel's parameter") of the numbers a graph would keep as captured
    though they changed from step to step, or the calls' sequence itself."""
    unfrozen = [call._replace(args=tuple(theirs if isinstance(mine, LiveValue) else mine
                                         for mine, theirs in zip(call.args, other.args)))
                for call, other in zip(captured, ordinary)]
    difference = compareSteps(unfrozen, ordinary)
    if not difference.sameCalls or len(captured) != len(ordinary):
        return ["the sequence of its kernel calls"]
    return [f"{kernel}'s {param}" for kernel, param in difference.changedScalars]


def differing(pairs):
    """The indices of the pairs of arrays (of one shape and dtype each) whose bytes differ; on a device one read of
    the count of differing bytes over all of them, and one read per array only where some differ."""
    if isGpu and pairs:
        total = xp.zeros((), dtype=numpy.int64)
        for first, second in pairs:
            total += xp.count_nonzero(first.reshape(-1).view(numpy.uint8) != second.reshape(-1).view(numpy.uint8))
        if int(total) == 0:
            return []
    return [index for index, (first, second) in enumerate(pairs) if toHost(first).tobytes() != toHost(second).tobytes()]


class Snapshot:
    """The arrays (copied) and the attributes of a set of objects, and the random state."""

    def __init__(self, objects):
        self.objects = objects
        self.attributes = [dict(vars(obj)) for obj in objects]
        self.arrays = {(index, name): (array, array.copy())
                       for index, obj in enumerate(objects) for name, array in arrayAttributes(obj)}
        self.random = getRandomState()

    def restore(self):
        for obj, attributes in zip(self.objects, self.attributes):
            vars(obj).clear()
            vars(obj).update(attributes)
        for array, copy in self.arrays.values():
            array[...] = copy
        setRandomState(self.random)

    def differences(self, other, before):
        """Where ``other`` (a later snapshot of the same objects) differs from this one in the state that
        ``before`` (an earlier one) shows kept: the bytes of every array this one holds where ``before`` held the
        same array (updated in place: parameters, gradients, optimizer state, buffers, sums; a module's cache of
        its last pass is bound anew), and the numbers of every object but the modules (counters, flags)."""
        kept = [key for key, (array, copy) in self.arrays.items()
                if key in other.arrays and key in before.arrays and before.arrays[key][0] is array]
        found = [kept[index] for index in differing([(self.arrays[key][1], other.arrays[key][1]) for key in kept])]
        for index, (mine, theirs) in enumerate(zip(self.attributes, other.attributes)):
            if isinstance(self.objects[index], Module):
                continue
            found += [(index, name) for name, value in mine.items() if isinstance(value, (int, float, str))
                      and name in theirs and type(theirs[name]) is type(value) and theirs[name] != value
                      and value == value]
        if self.random != other.random:
            found.append("random state")
        return [self._name(key) for key in found]

    def _name(self, key):
        if isinstance(key, str):
            return key
        index, name = key
        return f"{self.objects[index]!r}.{name}"


class Recording:
    """One input shape's progress: its calls so far, its tapes, and what a replay does besides the tape."""

    def __init__(self):
        self.calls, self.tapes, self.refused, self.checked = 0, [], False, False
        self.graph = self.error = self.guarded = self.kernelCalls = None
        self.samples = 0


def capture(module, cost, optimizer):
    """``step = minidl.capture(net, cost, optimizer)``: a training step to call as ``step(data, labels)`` (returns
    the batch's error), captured per batch shape. The optimizer must be set up on ``module``."""
    return CapturedStep(module, cost, optimizer, asked=True)


class CapturedStep:
    said = set()  # the reasons a device or a data-parallel optimizer is not captured, said once a process

    def __init__(self, module, cost, optimizer, asked=False):
        """``asked``: made by ``minidl.capture`` (where capture cannot run at all, a warning says so), not by
        default (a Trainer's: an info line)."""
        checkParts("a captured step", module, cost, optimizer)
        self.module, self.cost, self.optimizer, self.asked = module, cost, optimizer, asked
        self.recordings = {}  # input shapes and dtypes -> Recording
        self.settings = None  # what the recordings took as given (``_settings``)
        self.variables = self.modules = None  # the module's Variables and modules, as last bound
        self.groups = None  # the optimizer's state groups, as last seen (``_settings``)
        self.changes = 0  # settings changed before any replay, in a row
        self.off = None  # why capture is off for good, once it is

    def __call__(self, data, target):
        if self.off is None:
            self.off = self._unsupported()
            if self.off is not None and (self.asked or self.off not in CapturedStep.said):  # a Trainer's: once
                CapturedStep.said.add(self.off)
                log.log(logging.WARNING if self.asked else logging.INFO, "minidl: training steps run uncaptured: %s",
                        self.off)
        if self.off is None:
            settings = self._settings()
            if settings != self.settings:
                self._restart(settings)
        if self.off is not None:
            return self.ordinary(data, target)
        key = tuple((value.shape, value.dtype) if isArray(value) else type(value)
                    for value in (data, target))
        recording = self.recordings.setdefault(key, Recording())
        recording.calls += 1
        if recording.refused or recording.calls == 1:
            return self.ordinary(data, target)
        try:
            if isGpu and recording.graph is None:
                return self._captureGraph(recording, key, data, target)
            if not isGpu and recording.calls <= 1 + RECORDINGS:
                return self._record(recording, key, data, target)
            if not recording.checked:
                return self._check(recording, key, data, target)
        except BaseException:
            recording.calls -= 1  # a step that raised (bad data, the guard's "raise") counts for no phase
            raise
        self.changes = 0
        return self._replay(recording, data, target)

    def ordinary(self, data, target):
        return ordinaryStep(self.module, self.cost, self.optimizer, data, target)

    def _unsupported(self):
        if self.optimizer.nodeinfo is not None:
            return "a data-parallel step averages its gradients over the ranks, which a replay does not"
        return None

    def _settings(self):
        """What a recording takes as given: the Variables bound and the modules' numbers (``Rebinds``), each
        Variable's scales, every module's mode, the numbers of the cost and the hooks, the guard's mode, the loss
        scaler and the optimizer's arrays (a ``setupOn`` again makes new ones, in local state without rebinding a
        Variable; the optimizer's hyperparameters are read again by each replay)."""
        optimizer = self.optimizer
        if self.variables is None or self.settings is None or self.settings[0] != Rebinds.count:
            self.variables = list(self.module.getVarTable().values())
            self.modules = list(self.module.walk())
        self.groups = optimizer.groups  # held until the next call, so that a new setupOn's list has another id
        return (Rebinds.count, tuple((var.learnRate, var.wc) for var in self.variables),
                tuple(module.train for module in self.modules), numbersOf(self.cost, skip=("samples", "accumErr")),
                optimizer.nonFinite, id(optimizer.lossScaler), tuple(map(numbersOf, optimizer.hooks)),
                id(optimizer.groups))

    def _restart(self, settings):
        """Settings changed: every shape starts again; changes in a row before any replay turn capture off."""
        if self.settings is not None:
            self.changes += 1
        if self.changes >= GIVE_UP_AFTER:
            self.off = "the step's settings (modes, hooks, Variables' scales) change at every step"
            log.warning("minidl: training steps run uncaptured: %s", self.off)
        self.recordings, self.settings = {}, settings

    def _record(self, recording, key, data, target):
        """A real step, recorded; the last two recordings are compared. A step the tape refuses is put back and
        run ordinarily."""
        before = Snapshot(stateObjects(self.module, self.cost, self.optimizer))
        tape, samples = Tape(), self.cost.samples
        try:
            with tape.recording(xp):
                error, guarded = stepLaunches(self.module, self.cost, self.optimizer, tape.input(data),
                                              tape.input(target))
        except CaptureError as why:
            before.restore()
            self._refuse(recording, key, str(why))
            return self.ordinary(data, target)
        except BaseException:
            before.restore()
            raise
        self.optimizer.finishUpdate(guarded)
        recording.error, recording.guarded = getattr(error, "array", error), guarded  # a DeviceScalar keeps a value
        recording.samples = self.cost.samples - samples
        if recording.calls == 1 + RECORDINGS:
            try:
                tape.follow(recording.tapes[-1])
            except CaptureError as why:
                self._refuse(recording, key, str(why))
        recording.tapes = [*recording.tapes[-1:], tape] if not recording.refused else []
        return float(error)

    def _captureGraph(self, recording, key, data, target):
        """Capture the step as a CUDA graph and launch it (this call's step); a step the capture refuses is put back
        and run ordinarily."""
        objects = stateObjects(self.module, self.cost, self.optimizer)
        before = Snapshot(objects)
        graph, samples = DeviceGraph(), self.cost.samples
        try:
            with recordingKernels() as calls:
                error, guarded = graph.capture(
                    lambda x, y: stepLaunches(self.module, self.cost, self.optimizer, x, y), data, target)
        except (RuntimeError, CaptureLiveError) as why:  # CuPy's refusal of a sync or an upload; a live value's use
            before.restore()
            self._refuse(recording, key, f"it cannot be captured as a CUDA graph ({why})")
            return self.ordinary(data, target)
        except BaseException:
            before.restore()
            raise
        graph.keep(array for array, _ in before.arrays.values())
        graph.keep(array for obj in stateObjects(self.module, self.cost, self.optimizer)
                   for _, array in arrayAttributes(obj))
        graph.launch(data, target, renew=False)
        self.optimizer.finishUpdate(guarded)
        recording.graph, recording.error, recording.guarded, recording.kernelCalls = graph, error.array, guarded, calls
        recording.samples = self.cost.samples - samples
        return DeviceScalar(error.array.copy())

    def _replay(self, recording, data, target):
        if recording.graph is not None:
            recording.graph.launch(data, target)
        else:
            recording.tapes[-1].replay(data, target)
        self.cost.samples += recording.samples
        self.optimizer.finishUpdate(recording.guarded)
        return DeviceScalar(recording.error.copy()) if isGpu else float(recording.error)

    def _check(self, recording, key, data, target):
        """An ordinary step and a replay from one state on one batch: the same bytes everywhere, or the shape is
        refused (the state is then the ordinary step's)."""
        objects = stateObjects(self.module, self.cost, self.optimizer)
        before = Snapshot(objects)
        with recordingKernels() as calls:
            error = self.ordinary(data, target)
        ordinary = Snapshot(objects)
        frozen = frozenNumbers(recording.kernelCalls, calls) if recording.graph is not None else []
        if frozen:
            self._refuse(recording, key, "its graph would keep numbers its kernels take that changed since the "
                                         f"capture ({', '.join(frozen[:3])}): they do not reach them as live values")
            return error
        before.restore()
        replayed = self._replay(recording, data, target)
        differences = ordinary.differences(Snapshot(objects), before)
        if not differences and numpy.float64(replayed).tobytes() == numpy.float64(error).tobytes():
            recording.tapes, recording.checked = recording.tapes[-1:], True
            return replayed
        ordinary.restore()
        self._refuse(recording, key, "its replay did not give the bits of an ordinary step (" +
                     (", ".join(differences[:3]) or "the error") + ")")
        return error

    def _refuse(self, recording, key, why):
        recording.refused, recording.tapes, recording.graph = True, [], None
        log.warning("minidl: the training step for inputs %s runs uncaptured: %s",
                    " and ".join(str(part[0]) if isinstance(part, tuple) else part.__name__ for part in key), why)
