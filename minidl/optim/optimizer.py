"""Optimizer: the base of every update rule.

A subclass states its rule as one Elementwise ``kernel`` and the arguments it takes in
``kernelArgs(param, grad, state, learnRate)`` (one launch over arrays of one shape), its state arrays in
``setupState(param)`` (made by ``stateArray``, named like the kernel's outputs), and its hyperparameters as
``Hyper`` attributes listed in ``hyperNames``. The base class decides what those arrays are:

* local state: one group per Variable (its own data, grad and state arrays), one launch each;
* global state (``useGlobalState=True``): one group per dtype. The Variables' data and grads are moved into
  ONE contiguous parameter buffer and ONE gradient buffer, the module's Variables become views into them
  (so backward writes straight into the flat gradient buffer), the state arrays are flat too, and a step
  is a single launch over the whole model. Variables with a ``learnRate`` scale other than their
  neighbours' get a launch of their own for their stretch of the buffer.

Both give the same numbers. The step's learning rate for a Variable is ``optimizer.learnRate *
var.learnRate``. Hooks (``addHook``) rewrite the gradients before each step, in the order they were added.

With a ``nodeinfo`` (data-parallel training, global state only), ``setupOn`` gives every rank rank 0's
parameters and ``update`` first averages each flat gradient buffer over the ranks in one collective.

``save(path)``/``load(path)`` keep the state in a safetensors file that needs no per-optimizer code: the
tensors are ``getStateTable()``, the metadata the class name and ``getAttrDict()`` as JSON: the
hyperparameters and ``t``, the number of steps taken (Adam's bias correction reads it).
"""

import json
import math
from dataclasses import dataclass, field

import numpy

from minidl.backend import toHost, xp
from minidl.distributed.nodeinfo import NodeInfo
from minidl.errors import CheckpointError, MinidlError, OptimizerError
from minidl.tensorfile import TensorFile, copyTensors, parseJson, writeTensors

OPTIMIZER_FORMAT = "minidl.optimizer"


def checkHyper(name, value, low=0.0, high=math.inf, lowOpen=False, highOpen=False):
    """Raise OptimizerError unless ``value`` is a real number in the stated interval."""
    if isinstance(value, bool) or not isinstance(value, (int, float, numpy.number)):
        raise OptimizerError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    inside = (value > low if lowOpen else value >= low) and (value < high if highOpen else value <= high)
    if not math.isfinite(value) or not inside:
        interval = f"{'(' if lowOpen else '['}{low}, {high}{')' if highOpen else ']'}"
        raise OptimizerError(f"{name} must lie in {interval}, got {value}")
    return value


def stateArray(param, fill=0.0):
    """A state array for ``param``, filled with ``fill``: float32 for float16 parameters (a half accumulator
    loses small squared gradients: 1e-4² is 0 in float16), the parameter's dtype otherwise."""
    return xp.full(param.shape, fill, dtype=numpy.promote_types(param.dtype, numpy.float32))


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
    """Arrays updated together: parameters, gradients, state, and which Variables they hold."""

    param: object
    grad: object
    state: dict
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
        """param, grad and state for the stretch [start, stop) (all of them when it covers the group)."""
        if start == 0 and stop == self.param.size:
            return self.param, self.grad, self.state
        part = slice(start, stop)
        return self.param[part], self.grad[part], {key: value[part] for key, value in self.state.items()}


class Optimizer:
    """``setupOn(module)``, then per step ``zeroGradParams()``, backward, ``update()``."""

    learnRate = Hyper()
    hyperNames = ("learnRate",)
    kernel = None

    def __init__(self, nodeinfo=None):
        if nodeinfo is not None and not isinstance(nodeinfo, NodeInfo):
            raise OptimizerError(f"nodeinfo must be a minidl.distributed.NodeInfo, got {type(nodeinfo).__name__}")
        self.nodeinfo = nodeinfo
        self.module = None
        self.groups = []
        self.globalState = False
        self.hooks = []
        self.t = 0

    def __repr__(self):
        return type(self).__name__

    @property
    def t(self):
        """The number of steps taken (Adam's bias correction reads it); restore it to resume a run."""
        return self._t

    @t.setter
    def t(self, value):
        number = isinstance(value, (int, float, numpy.integer, numpy.floating)) and not isinstance(value, bool)
        if not (number and math.isfinite(value) and value == int(value) and value >= 0):
            raise OptimizerError(f"t must be a whole number of steps >= 0, got {value!r}")
        self._t = int(value)

    def addHook(self, hook):
        """Run ``hook`` on the gradients before every step, after the hooks added before it."""
        from minidl.optim.hooks.hook import Hook

        if not isinstance(hook, Hook):
            raise OptimizerError(f"addHook expects a Hook (WeightDecay, GradientClip, ...), got {type(hook).__name__}")
        self.hooks.append(hook)
        return self

    def setupOn(self, module, useGlobalState=False):
        """Attach to ``module``'s Variables and allocate the state; with global state, flatten them."""
        from minidl.nn.module import Module

        if not isinstance(module, Module):
            raise OptimizerError(f"setupOn expects a Module, got {type(module).__name__}")
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
        self.groups, self.module, self.globalState = groups, module, useGlobalState
        return self

    def _localGroups(self, variables):
        groups = []
        for name, var in variables.items():
            span = Span(name, var, 0, var.data.size, var.data, var.grad)
            groups.append(StateGroup(var.data, var.grad, self.setupState(var.data), [span]))
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
        """One step: gradients averaged over the ranks (with a nodeinfo), the hooks rewrite them, then the update
        rule runs on every Variable."""
        self._checkReady("update")
        self._checkScales()
        if self.nodeinfo is not None:
            for group in self.groups:
                self.nodeinfo.meanTensor(group.grad)
        for hook in self.hooks:
            hook(self.groups)
        self.t += 1
        for group in self.groups:
            for scale, start, stop in group.runs("learnRate"):
                param, grad, state = group.arrays(start, stop)
                self.updateVar(param, grad, state, self.learnRate * scale)

    def getAttrDict(self):
        """The hyperparameters named in ``hyperNames`` and the step count ``t``, by name."""
        return {**{name: getattr(self, name) for name in self.hyperNames}, "t": self.t}

    def setAttrDict(self, attrs):
        """Set entries of ``getAttrDict()`` (all of them to restore a run, or some); an unknown name or a bad
        value raises and changes nothing."""
        previous = self.getAttrDict()
        unknown = sorted(set(attrs) - set(previous))
        if unknown:
            raise OptimizerError(f"{self!r} has no attributes {unknown}; it has {sorted(previous)}")
        try:
            for name, value in attrs.items():
                setattr(self, name, value)
        except MinidlError:
            for name, value in previous.items():
                setattr(self, name, value)
            raise

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
        class for Variables of the same names, shapes and dtypes.
        """
        self._checkReady("load")
        targets = self.getStateTable()
        with TensorFile(path, OPTIMIZER_FORMAT) as file:
            attrs = self.attrsFromMetadata(file.metadata, path)
            tensors = file.read(targets)
        try:
            self.setAttrDict(attrs)
        except MinidlError as error:
            raise CheckpointError(f"{path}: {error}") from error
        copyTensors(targets, tensors)
        return self

    def getStateTable(self):
        """Every state array, per Variable: ``{"<var name>.<state name>": array}`` shaped like the Variable.

        In global state these are views into the flat buffers, so writing them restores the state; the
        table is the same whichever mode the optimizer runs in.
        """
        self._checkReady("getStateTable")
        table = {}
        for group in self.groups:
            for span in group.spans:
                for key, array in group.state.items():
                    flat = array.reshape(-1)[span.start:span.stop]
                    table[f"{span.name}.{key}"] = flat.reshape(span.var.data.shape)
        return table

    def setupState(self, param):
        """The state arrays of the rule, each shaped like ``param`` (none by default)."""
        return {}

    def updateVar(self, param, grad, state, learnRate):
        """One launch of the rule's kernel over arrays of one shape."""
        self.kernel(*self.kernelArgs(param, grad, state, learnRate))

    def kernelArgs(self, param, grad, state, learnRate):
        """The arguments of ``kernel`` for one launch, in its declared order."""
        raise NotImplementedError
