"""Optimizer: the base of every update rule.

A subclass states its rule once as an ``UpdateRule`` (``rule``: its operation on ``grad`` and ``param``, run as a
direct kernel or as a master-weight kernel), the values of the rule's hyperparameters for one launch in
``hyperValues(learnRate)``, its state arrays in ``setupState(param)`` (made by ``stateArray``, of the compute type:
float32 for float16 and float32 parameters, float64 for float64 ones), and its hyperparameters as ``Hyper``
attributes listed in ``hyperNames``. Every hyperparameter reaches the kernel in the compute type, so float64
training is exact to float64 rounding. The base class decides what the arrays are:

* local state: one group per Variable (its own data, grad and state arrays), one launch each;
* global state (``useGlobalState=True``): one group per dtype. The Variables' data and grads are moved into
  ONE contiguous parameter buffer and ONE gradient buffer, the module's Variables become views into them
  (so backward writes straight into the flat gradient buffer), the state arrays are flat too, and a step
  is a single launch over the whole model. Variables with a ``learnRate`` scale other than their
  neighbours' get a launch of their own for their stretch of the buffer.

Both give the same numbers. The step's learning rate for a Variable is ``optimizer.learnRate *
var.learnRate``. Hooks (``addHook``) rewrite the gradients before each step, in the order they were added.
float16 parameters get float32 master copies by default (``masterWeights``): the group's one launch steps the
masters and writes the float16 parameters. A ``LossScaler`` (``setupOn(..., lossScaler=)``) has its 1/scale
applied to the gradients inside that launch.

After the hooks, a non-finite guard (``nonFinite``: "raise", "skip" or "off") checks each flat gradient buffer on
the device (``minidl.optim.guard``) and leaves a flag that the update kernels read: a step with a NaN or inf
gradient changes no parameter and no state, without the host looking. The host reads the guard's record
(``readGuard()``) after every step by default; inside ``deferGuard()`` (the Trainer's epochs, the commands'
loops) only every ``syncEvery`` steps (None: never by itself) and wherever the loop calls ``readGuard()`` (the
Trainer: after each macro-batch and at the end of each epoch), so a step holds no host sync. At a read, skipped
steps are taken off ``t`` and counted in ``skippedSteps`` ("skip"), or an OptimizerError names the Variable and
the step of the first non-finite gradient ("raise": every step from that one on changed nothing). A dynamic loss
scaler decides its scale on the host, so with one the guard is read after every step. Between a skipped step
and the read, ``t`` counts it (Adam's bias correction sees one step more). ``update`` also refuses a Variable
replaced (``setVar``) after ``setupOn``; ``setupOn`` again resets every state, ``t`` included.

With a ``nodeinfo`` (data-parallel training, global state only), ``setupOn`` gives every rank rank 0's
parameters and ``update`` first averages each flat gradient buffer over the ranks in one collective.

``save(path)``/``load(path)`` keep the state in a safetensors file that needs no per-optimizer code: the
tensors are ``getStateTable()``, the metadata the class name and ``getAttrDict()`` as JSON: the
hyperparameters, ``t``, the number of steps taken (Adam's bias correction reads it), ``skippedSteps`` and the
loss scaler's state. State that no run can produce (NaN, inf, negative accumulated squares) is refused on load.
"""

import contextlib
import json
import math
from dataclasses import dataclass, field

import numpy

from minidl.backend import toHost, xp
from minidl.distributed.nodeinfo import NodeInfo
from minidl.errors import CheckpointError, MinidlError, OptimizerError
from minidl.optim.guard import NonFiniteGuard
from minidl.tensorfile import TensorFile, copyTensors, parseJson, writeTensors

OPTIMIZER_FORMAT = "minidl.optimizer"


def _count(name, value):
    """``value`` as an int, or OptimizerError unless it is a whole number >= 0."""
    number = isinstance(value, (int, float, numpy.integer, numpy.floating)) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and value == int(value) and value >= 0):
        raise OptimizerError(f"{name} must be a whole number of steps >= 0, got {value!r}")
    return int(value)


def checkHyper(name, value, low=0.0, high=math.inf, lowOpen=False, highOpen=False):
    """Raise OptimizerError unless ``value`` is a real number in the stated interval."""
    if isinstance(value, bool) or not isinstance(value, (int, float, numpy.integer, numpy.floating)):
        raise OptimizerError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    inside = (value > low if lowOpen else value >= low) and (value < high if highOpen else value <= high)
    if not math.isfinite(value) or not inside:
        interval = f"{'(' if lowOpen else '['}{low}, {high}{')' if highOpen else ']'}"
        raise OptimizerError(f"{name} must lie in {interval}, got {value}")
    return value


def computeType(dtype):
    """The dtype a kernel computes in for parameters of ``dtype``: float32 for float16 and float32, else float64."""
    return numpy.promote_types(dtype, numpy.float32)


def stateArray(param, fill=0.0):
    """A state array for ``param``, filled with ``fill``, of the compute type (``computeType``): float32 for float16
    parameters (a half accumulator loses small squared gradients: 1e-4² is 0 in float16)."""
    return xp.full(param.shape, fill, dtype=computeType(param.dtype))


class Hyper:
    """A hyperparameter attribute: ``checkHyper`` validates every assignment, the constructor's included."""

    def __init__(self, low=0.0, high=math.inf, lowOpen=False, highOpen=False):
        self.bounds = {"low": low, "high": high, "lowOpen": lowOpen, "highOpen": highOpen}

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        if self.name not in obj.__dict__:
            raise AttributeError(f"{type(obj).__name__}.{self.name} has not been set")
        return obj.__dict__[self.name]

    def __set__(self, obj, value):
        obj.__dict__[self.name] = checkHyper(self.name, value, **self.bounds)


@dataclass(frozen=True)
class Span:
    """A Variable's stretch [start, stop) of its group's flat arrays, and the arrays it was given there."""

    name: str
    var: object
    start: int
    stop: int
    data: object
    grad: object

    def intact(self):
        """False once someone rebinds the Variable's data or grad, leaving the optimizer's arrays behind."""
        return self.var.data is self.data and self.var.grad is self.grad


@dataclass
class StateGroup:
    """Arrays updated together: parameters, gradients, state, float32 master parameters (None unless the
    parameters are float16 and master weights are on), the one-element ``gradScale`` of the compute type that
    turns gradients into true gradients (a loss scaler's 1/scale, else 1), and which Variables they hold."""

    param: object
    grad: object
    state: dict
    master: object = None
    gradScale: object = None
    spans: list = field(default_factory=list)

    def runs(self, attr="learnRate"):
        """Stretches of consecutive Variables sharing one value of ``var.<attr>``: (value, start, stop)."""
        runs = []
        for span in self.spans:
            value = getattr(span.var, attr)
            if runs and runs[-1][0] == value:
                runs[-1][2] = span.stop
            else:
                runs.append([value, span.start, span.stop])
        return runs

    def arrays(self, start, stop):
        """param, grad, state and master (or None) for the stretch [start, stop) (all of them when it covers the
        group)."""
        if start == 0 and stop == self.param.size:
            return self.param, self.grad, self.state, self.master
        part = slice(start, stop)
        master = None if self.master is None else self.master[part]
        return self.param[part], self.grad[part], {key: value[part] for key, value in self.state.items()}, master

    def values(self, start, stop):
        """The parameters' true values for [start, stop): the masters where there are, else the parameters."""
        param, _, _, master = self.arrays(start, stop)
        return param if master is None else master


NON_FINITE = ("raise", "skip", "off")


class Optimizer:
    """``setupOn(module)``, then per step ``zeroGradParams()``, backward, ``update()``."""

    learnRate = Hyper()
    hyperNames = ("learnRate",)
    rule = None
    nonNegativeStates = ()

    def __init__(self, nodeinfo=None):
        if nodeinfo is not None and not isinstance(nodeinfo, NodeInfo):
            raise OptimizerError(f"nodeinfo must be a minidl.distributed.NodeInfo, got {type(nodeinfo).__name__}")
        self.nodeinfo = nodeinfo
        self.module = None
        self.groups = []
        self.globalState = False
        self.lossScaler = None
        self.hooks = []
        self.nonFinite = "raise"
        self.syncEvery = None
        self.guard, self.deferred, self.unread = NonFiniteGuard(), False, 0
        self.t = 0
        self.skippedSteps = 0

    def __repr__(self):
        return type(self).__name__

    @property
    def t(self):
        """The number of steps taken (Adam's bias correction reads it); restore it to resume a run."""
        return self._t

    @t.setter
    def t(self, value):
        self._t = _count("t", value)

    @property
    def skippedSteps(self):
        """The number of steps skipped for non-finite gradients (``nonFinite = "skip"``, or a dynamic loss scaler)."""
        return self._skippedSteps

    @skippedSteps.setter
    def skippedSteps(self, value):
        self._skippedSteps = _count("skippedSteps", value)

    @property
    def nonFinite(self):
        """What ``update`` does when a gradient holds NaN or ±inf after the hooks: "raise" (OptimizerError naming
        the first such Variable, nothing changed), "skip" (parameters and state untouched, ``skippedSteps``
        counted) or "off" (no check). A dynamic loss scaler always skips and backs off instead."""
        return self._nonFinite

    @nonFinite.setter
    def nonFinite(self, mode):
        if mode not in NON_FINITE:
            raise OptimizerError(f"nonFinite must be one of {NON_FINITE}, got {mode!r}")
        self._nonFinite = mode

    def addHook(self, hook):
        """Run ``hook`` on the gradients before every step, after the hooks added before it."""
        from minidl.optim.hooks.hook import Hook

        if not isinstance(hook, Hook):
            raise OptimizerError(f"addHook expects a Hook (WeightDecay, GradientClip, ...), got {type(hook).__name__}")
        self.hooks.append(hook)
        return self

    def setupOn(self, module, useGlobalState=False, masterWeights=True, lossScaler=None):
        """Attach to ``module``'s Variables and allocate the state; with global state, flatten them.

        ``masterWeights`` (default True) keeps float32 master copies of float16 parameters: the update reads the
        float16 gradient, steps the masters and state in float32 and writes the float16 parameters the network
        computes with, in one launch (float32 and float64 parameters are their own masters). A float16 parameter
        changed in place since the last step (``Variable.set``) replaces its master at the next. ``lossScaler`` (a
        ``LossScaler``) unscales the gradients inside that launch.
        Everything is reset: state, masters, ``t``, ``skippedSteps`` and the loss scaler's scale.
        """
        from minidl.nn.module import Module
        from minidl.optim.lossscaler import LossScaler

        if not isinstance(module, Module):
            raise OptimizerError(f"setupOn expects a Module, got {type(module).__name__}")
        for flag, value in (("useGlobalState", useGlobalState), ("masterWeights", masterWeights)):
            if not isinstance(value, bool):
                raise OptimizerError(f"{flag} must be True or False, got {value!r}")
        if lossScaler is not None and not isinstance(lossScaler, LossScaler):
            raise OptimizerError(f"lossScaler must be a minidl.optim.LossScaler, got {type(lossScaler).__name__}")
        if self.nodeinfo is not None and not useGlobalState:
            raise OptimizerError("data-parallel training (nodeinfo) needs useGlobalState=True")
        table = module.getVarTable()
        if not table:
            raise OptimizerError(f"{module!r} has no Variables to optimize")
        for name, var in table.items():
            if not isinstance(var.data, xp.ndarray) or not numpy.issubdtype(var.data.dtype, numpy.floating):
                raise OptimizerError(f"Variable {name} must be a floating {xp.__name__} array, got {var.data!r}")
            if not useGlobalState and not (var.data.flags.c_contiguous and var.grad.flags.c_contiguous):
                raise OptimizerError(f"Variable {name}: local state updates data and grad in place, so both must be "
                                     "C-contiguous (global state copies them into its flat buffers)")
        groups = self._globalGroups(table) if useGlobalState else self._localGroups(table)
        if self.nodeinfo is not None:
            for group in groups:
                self.nodeinfo.broadcastBuffer(group.param)
        for group in groups:
            if masterWeights and group.param.dtype == numpy.float16:
                group.master = group.param.astype(numpy.float32)
            group.gradScale = xp.ones(1, dtype=computeType(group.param.dtype))
        if lossScaler is not None:
            lossScaler.reset()
        self.groups, self.module, self.globalState, self.lossScaler = groups, module, useGlobalState, lossScaler
        self.t, self.skippedSteps = 0, 0
        self.guard.clear()
        self.unread = 0
        return self

    def _localGroups(self, variables):
        groups = []
        for name, var in variables.items():
            span = Span(name, var, 0, var.data.size, var.data, var.grad)
            groups.append(StateGroup(var.data, var.grad, self.setupState(var.data), spans=[span]))
        return groups

    def _globalGroups(self, variables):
        groups = []
        for dtype in dict.fromkeys(var.data.dtype for var in variables.values()):
            members = {name: var for name, var in variables.items() if var.data.dtype == dtype}
            total = sum(var.data.size for var in members.values())
            param, grad = xp.empty(total, dtype=dtype), xp.empty(total, dtype=dtype)
            group = StateGroup(param, grad, self.setupState(param))
            offset = 0
            for name, var in members.items():
                start, stop = offset, offset + var.data.size
                param[start:stop] = var.data.ravel()
                grad[start:stop] = var.grad.ravel()
                var.data = param[start:stop].reshape(var.data.shape)
                var.grad = grad[start:stop].reshape(var.grad.shape)
                group.spans.append(Span(name, var, start, stop, var.data, var.grad))
                offset = stop
            groups.append(group)
        return groups

    def _checkReady(self, what):
        if self.module is None:
            raise OptimizerError(f"{what}() called before setupOn(module)")
        for group in self.groups:
            for span in group.spans:
                if not span.intact():
                    raise OptimizerError(
                        f"Variable {span.name!r} was rebound after setupOn; call setupOn again"
                    )

    def _checkVariables(self):
        """OptimizerError unless the module still holds the Variables set up on (``setVar`` after setupOn would
        leave a new Variable untrained, its gradient growing forever)."""
        table = self.module.getVarTable()
        known = {span.name: span.var for group in self.groups for span in group.spans}
        for name, var in table.items():
            if known.get(name) is not var:
                raise OptimizerError(f"Variable {name!r} of {self.module!r} was replaced or added after setupOn, so "
                                     "the optimizer does not update it: call setupOn again")
        for name in known.keys() - table.keys():
            raise OptimizerError(f"Variable {name!r} was removed from {self.module!r} after setupOn: call setupOn "
                                 "again")

    def zeroGradParams(self):
        """Set every gradient to zero (one fill per dtype in global state)."""
        self._checkReady("zeroGradParams")
        for group in self.groups:
            group.grad.fill(0)

    def _checkScales(self):
        """OptimizerError unless each Variable's ``learnRate`` (and ``wc``, read by the hooks) is a finite number
        >= 0: checked before a step changes anything, as a bad scale would fail half-way through it."""
        attrs = ("learnRate", "wc") if self.hooks else ("learnRate",)
        for group in self.groups:
            for span in group.spans:
                for attr in attrs:
                    checkHyper(f"Variable {span.name!r} {attr}", getattr(span.var, attr))

    def update(self):
        """One step: gradients averaged over the ranks (with a nodeinfo), the hooks rewrite them, the non-finite
        guard checks them (``nonFinite``), then the update rule runs on every Variable, unscaling the gradients
        by the loss scaler's scale where there is one. Returns False when the step was skipped, True when it was
        taken, None when the guard's verdict is still on the device (``deferGuard``)."""
        self._checkReady("update")
        self._checkVariables()
        self._checkScales()
        if self.nodeinfo is not None:
            for group in self.groups:
                self.nodeinfo.meanTensor(group.grad)
        if self.lossScaler is not None:
            for group in self.groups:
                group.gradScale.fill(1 / self.lossScaler.scale)
        for hook in self.hooks:
            hook(self.groups)
        dynamic = self.lossScaler is not None and self.lossScaler.dynamic
        guarded = self.nonFinite != "off" or dynamic
        if guarded:
            self.guard.check([group.grad for group in self.groups], self.t + 1,
                             sticky=self.nonFinite == "raise" and not dynamic)
        elif self.unread:
            self.readGuard()  # steps guarded before the guard was turned off
        self.t += 1
        for group in self.groups:
            for scale, start, stop in group.runs("learnRate"):
                self.updateVar(*group.arrays(start, stop), group.gradScale, self.learnRate * scale)
        self.unread += guarded
        if guarded and (dynamic or not self.deferred or (self.syncEvery and self.unread >= self.syncEvery)):
            return self.readGuard() == 0
        if self.lossScaler is not None and not dynamic:
            self.lossScaler.stepped()
        return True if not guarded else None

    def readGuard(self):
        """Read what the non-finite guard recorded on the device since the last read (one copy of four numbers: a
        sync on a GPU); returns the number of steps that changed nothing, taken off ``t``. "skip" counts them in
        ``skippedSteps`` (a dynamic loss scaler backs off, or counts a good step); "raise" raises an
        OptimizerError naming the Variable and the step of the first non-finite gradient."""
        if not self.unread:
            return 0
        dynamic = self.lossScaler is not None and self.lossScaler.dynamic
        skipped, step, group, index = self.guard.read()
        self.unread = 0
        self.t -= skipped
        if dynamic:
            self.lossScaler.backoff() if skipped else self.lossScaler.stepped()
        if not skipped:
            return 0
        if self.nonFinite == "raise" and not dynamic:
            name = next(span.name for span in self.groups[group].spans if span.start <= index < span.stop)
            later = f" and the {skipped - 1} after it" if skipped > 1 else ""
            raise OptimizerError(
                f"Variable {name!r} has a non-finite gradient (NaN or inf) at step {step}: that step{later} changed "
                "nothing (a diverging run: lower the learning rate, clip the gradients, or set "
                "optimizer.nonFinite = 'skip')"
            )
        self.skippedSteps += skipped
        return skipped

    @contextlib.contextmanager
    def deferGuard(self):
        """Within it, ``update()`` leaves the guard's record on the device (read every ``syncEvery`` steps, or
        by the loop's own ``readGuard()``); on leaving it, the record is read."""
        previous, self.deferred = self.deferred, True
        try:
            yield self
        finally:
            self.deferred = previous
        self.readGuard()

    def getAttrDict(self):
        """The hyperparameters named in ``hyperNames``, the step count ``t``, ``skippedSteps`` and, with a loss
        scaler, its ``lossScale`` and ``lossScaleGoodSteps``, by name."""
        attrs = {**{name: getattr(self, name) for name in self.hyperNames}, "t": self.t,
                 "skippedSteps": self.skippedSteps}
        if self.lossScaler is not None:
            attrs.update(self.lossScaler.getAttrDict())
        return attrs

    def setAttrDict(self, attrs):
        """Set entries of ``getAttrDict()`` (all of them to restore a run, or some); an unknown name or a bad
        value raises and changes nothing."""
        previous = self.getAttrDict()
        unknown = sorted(set(attrs) - set(previous))
        if unknown:
            raise OptimizerError(f"{self!r} has no attributes {unknown}; it has {sorted(previous)}")
        try:
            for name, value in attrs.items():
                self._setAttr(name, value)
        except MinidlError:
            for name, value in previous.items():
                self._setAttr(name, value)
            raise

    def _setAttr(self, name, value):
        if self.lossScaler is not None and name in self.lossScaler.getAttrDict():
            self.lossScaler.setAttr(name, value)
        else:
            setattr(self, name, value)

    def attrMetadata(self):
        """Safetensors metadata for the class and ``getAttrDict()``: ``optimizer`` and ``attrs`` (JSON)."""
        attrs = json.dumps(self.getAttrDict(), default=lambda value: value.item())
        return {"optimizer": type(self).__name__, "attrs": attrs}

    def attrsFromMetadata(self, metadata, path):
        """The attribute dict that ``attrMetadata`` wrote; CheckpointError unless it fits this optimizer."""
        if metadata.get("optimizer") != type(self).__name__:
            raise CheckpointError(f"{path} holds the state of {metadata.get('optimizer')!r}, not of {self!r}")
        attrs = parseJson(metadata.get("attrs", ""), path, "optimizer attributes")
        expected = self.getAttrDict()
        if not isinstance(attrs, dict) or set(attrs) != set(expected):
            raise CheckpointError(f"{path}: optimizer attributes must be {sorted(expected)}, got {attrs!r:.200}")
        for name, value in attrs.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise CheckpointError(f"{path}: optimizer attribute {name} must be a finite number, got {value!r}")
        return attrs

    def save(self, path):
        """Write the state to a safetensors file: one tensor per ``getStateTable()`` name ("<var>.<state>",
        e.g. "0.W.h" for AdaGrad), metadata ``format = "minidl.optimizer"``, ``optimizer`` (the class name)
        and ``attrs`` (``getAttrDict()`` as JSON). Atomic: a failed write keeps the old file."""
        tensors = {name: toHost(array) for name, array in self.getStateTable().items()}
        writeTensors(path, tensors, {"format": OPTIMIZER_FORMAT, **self.attrMetadata()})

    def load(self, path):
        """Read the state written by ``save`` (on any device, in local or global state) into this optimizer.

        CheckpointError, with state and attributes unchanged, unless the file was written by the same
        class for Variables of the same names, shapes and dtypes, and holds state that can be valid
        (``checkLoadedState``).
        """
        self._checkReady("load")
        targets = self.getStateTable()
        with TensorFile(path, OPTIMIZER_FORMAT) as file:
            attrs = self.attrsFromMetadata(file.metadata, path)
            tensors = file.read(targets)
        self.checkLoadedState(tensors, path)
        try:
            self.setAttrDict(attrs)
        except MinidlError as error:
            raise CheckpointError(f"{path}: {error}") from error
        copyTensors(targets, tensors)
        return self

    def checkLoadedState(self, tensors, path):
        """CheckpointError unless every state (and master) tensor of ``tensors`` (host arrays named as in
        ``getStateTable()``) is finite, and those of ``nonNegativeStates`` (accumulated squares) are >= 0."""
        for name, array in tensors.items():
            state = name.rsplit(".", 1)[-1]
            array = numpy.asarray(array)
            if not numpy.isfinite(array).all():
                raise CheckpointError(f"{path}: optimizer state {name!r} holds NaN or inf, which no step can produce")
            if state in self.nonNegativeStates and (array < 0).any():
                raise CheckpointError(f"{path}: optimizer state {name!r} holds negative values ({array.min()!r}), "
                                      "but it accumulates squares")

    def getStateTable(self):
        """Every state array, per Variable: ``{"<var name>.<state name>": array}`` shaped like the Variable, and
        ``"<var name>.master"`` for float32 master parameters.

        In global state these are views into the flat buffers, so writing them restores the state; the
        table is the same whichever mode the optimizer runs in.
        """
        self._checkReady("getStateTable")
        table = {}
        for group in self.groups:
            arrays = {**group.state, **({} if group.master is None else {"master": group.master})}
            for span in group.spans:
                for key, array in arrays.items():
                    flat = array.reshape(-1)[span.start:span.stop]
                    table[f"{span.name}.{key}"] = flat.reshape(span.var.data.shape)
        return table

    def setupState(self, param):
        """The state arrays of the rule, each shaped like ``param`` (none by default)."""
        return {}

    def updateVar(self, param, grad, state, master, gradScale, learnRate):
        """One launch of the rule's kernel over arrays of one shape: the direct kernel, or the master kernel
        that steps ``master`` and writes ``param`` as its float16 copy."""
        states = [state[name] for name in self.rule.states]
        head = (grad, gradScale, self.guard.skip, *self.hyperValues(learnRate))
        if master is None:
            self.rule.direct(*head, param, *states)
        else:
            self.rule.master(*head, master, *states, param)

    def hyperValues(self, learnRate):
        """The rule's hyperparameters for one launch, in the order of ``rule.hypers`` (host floats; the kernel
        receives them in the compute type)."""
        raise NotImplementedError
