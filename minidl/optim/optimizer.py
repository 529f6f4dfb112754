"""Optimizer: the base of every optimizer, which a subclass declares by its ``UpdateRule`` (``rule``).

The rule carries the hyperparameters (``Hyper``: each becomes a checked attribute, listed in ``hyperNames``) and
the states (``State``: each becomes a state array of the compute type, float32 for float16 and float32 parameters,
float64 for float64 ones, filled with its ``fill``). Every hyperparameter reaches the kernel in the compute type,
so float64 training is exact to float64 rounding. A subclass whose kernel takes other values than its attributes
(Adam's bias-corrected step) overrides ``hyperValues``; one with attributes of its own lists them in ``hypers``.

The rest is in one file per idea: where the arrays live (``state``: local or global state), the non-finite guard
(``guard``: a flag on the device that the update kernels read, ``readGuard``, ``deferGuard``; no sync inside a
step), the attributes on disk (``persistence``) and the data-parallel step (``dataparallel``). The step's
learning rate for a Variable is ``optimizer.learnRate * var.learnRate``. Hooks (``addHook``) rewrite the gradients
before each step, in the order they were added. float16 parameters get float32 master copies by default
(``masterWeights``): the group's one launch steps the masters and writes the float16 parameters. A ``LossScaler``
(``setupOn(..., lossScaler=)``) has its 1/scale applied to the gradients inside that launch. ``update`` refuses a
Variable replaced (``setVar``) after ``setupOn``; ``setupOn`` again resets every state, ``t`` included.
"""

import inspect

import numpy

from minidl.backend import xp
from minidl.backend.tape import fill, liveValues
from minidl.errors import OptimizerError
from minidl.nn.module import Module
from minidl.optim.dataparallel import averageGradients, checkLayout, checkNodeInfo, shareParameters
from minidl.optim.guard import NonFiniteGuard
from minidl.optim.hooks.hook import Hook
from minidl.optim.lossscaler import LossScaler
from minidl.optim.persistence import Persistence
from minidl.optim.rule import Count, Hyper
from minidl.optim.state import (
    checkIntact,
    checkScales,
    checkVariables,
    computeType,
    globalGroups,
    localGroups,
    stateArray,
    stateTable,
)


class Optimizer(NonFiniteGuard, Persistence):
    """``setupOn(module)``, then per step ``zeroGradParams()``, backward, ``update()``."""

    learnRate = Hyper()
    hypers = {"learnRate": learnRate}
    hyperNames = ("learnRate",)
    rule = None
    t = Count("The number of steps taken (Adam's bias correction reads it); restore it to resume a run.")

    def __init_subclass__(cls, **kwargs):
        """Derive the attributes from the rule: one checked attribute per hyperparameter (unless the class has a
        property of that name: Adam's ``alpha``), and ``hyperNames``."""
        super().__init_subclass__(**kwargs)
        if "hypers" not in cls.__dict__ and "rule" in cls.__dict__:
            cls.hypers = cls.rule.hypers
        for name, hyper in cls.hypers.items():
            hyper.__set_name__(cls, name)
            if not isinstance(inspect.getattr_static(cls, name, None), property):
                setattr(cls, name, hyper)
        cls.hyperNames = tuple(cls.hypers)

    def __init__(self, nodeinfo=None, **hypers):
        """Set the hyperparameters ``hypers`` (every one of ``hyperNames``), each checked against its range."""
        if set(hypers) != set(self.hyperNames):
            raise TypeError(f"{type(self).__name__} sets the hyperparameters {self.hyperNames}, got {sorted(hypers)}")
        self.nodeinfo = checkNodeInfo(nodeinfo)
        self.module, self.groups, self.lossScaler, self.hooks = None, [], None, []
        self.nonFinite, self.t, self.skippedSteps = "raise", 0, 0
        self.syncEvery, self.deferred = None, False
        self.resetGuard()
        for name, value in hypers.items():
            setattr(self, name, value)

    def __repr__(self):
        return type(self).__name__

    def addHook(self, hook):
        """Run ``hook`` on the gradients before every step, after the hooks added before it."""
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
        if not isinstance(module, Module):
            raise OptimizerError(f"setupOn expects a Module, got {type(module).__name__}")
        for flag, value in (("useGlobalState", useGlobalState), ("masterWeights", masterWeights)):
            if not isinstance(value, bool):
                raise OptimizerError(f"{flag} must be True or False, got {value!r}")
        if lossScaler is not None and not isinstance(lossScaler, LossScaler):
            raise OptimizerError(f"lossScaler must be a minidl.optim.LossScaler, got {type(lossScaler).__name__}")
        checkLayout(self.nodeinfo, useGlobalState)
        table = module.getVarTable()
        if not table:
            raise OptimizerError(f"{module!r} has no Variables to optimize")
        for name, var in table.items():
            if not isinstance(var.data, xp.ndarray) or not numpy.issubdtype(var.data.dtype, numpy.floating):
                raise OptimizerError(f"Variable {name} must be a floating {xp.__name__} array, got {var.data!r}")
            if not useGlobalState and not (var.data.flags.c_contiguous and var.grad.flags.c_contiguous):
                raise OptimizerError(f"Variable {name}: local state updates data and grad in place, so both must be "
                                     "C-contiguous (global state copies them into its flat buffers)")
        groups = (globalGroups if useGlobalState else localGroups)(table, self.setupState)
        shareParameters(self.nodeinfo, groups)
        for group in groups:
            if masterWeights and group.param.dtype == numpy.float16:
                group.master = group.param.astype(numpy.float32)
            group.gradScale = xp.ones(1, dtype=computeType(group.param.dtype))
        if lossScaler is not None:
            lossScaler.reset()
        self.groups, self.module, self.lossScaler = groups, module, lossScaler
        self.t, self.skippedSteps = 0, 0
        self.resetGuard()
        return self

    def checkSetUpOn(self, module):
        """OptimizerError unless this optimizer was set up on ``module`` (a Trainer's, a checkpoint's pair)."""
        if self.module is not module:
            raise OptimizerError(f"{self!r} is not set up on {module!r}: call optimizer.setupOn(module) first")

    def _checkReady(self, what):
        if self.module is None:
            raise OptimizerError(f"{what}() called before setupOn(module)")
        checkIntact(self.groups)

    def zeroGradParams(self):
        """Set every gradient to zero (one fill per dtype in global state)."""
        self._checkReady("zeroGradParams")
        for group in self.groups:
            fill(group.grad, 0)

    def update(self):
        """One step: gradients averaged over the ranks (with a nodeinfo), the hooks rewrite them, the non-finite
        guard checks them on the device (``nonFinite``), then the update rule runs on every Variable (changing
        nothing where the guard's flag is set), unscaling the gradients by the loss scaler's scale where there is
        one. Returns False when the step was skipped, True when it was taken, None when the guard's verdict is
        still on the device (``deferGuard``)."""
        return self.finishUpdate(self.launchUpdate())

    def launchUpdate(self):
        """``update``'s work on the device, for step ``t + 1`` (what a captured step records); returns whether the
        step is guarded."""
        self._checkReady("update")
        checkVariables(self.module, self.groups)
        checkScales(self.groups, ("learnRate", "wc") if self.hooks else ("learnRate",))
        averageGradients(self.nodeinfo, self.groups)
        if self.lossScaler is not None:
            for group in self.groups:
                self.lossScaler.fillUnscale(group.gradScale)
        for hook in self.hooks:
            hook(self.groups)
        guarded = self.checkGradients()
        self.beforeRule()
        for group in self.groups:
            for scale, start, stop in group.runs("learnRate"):
                self.updateVar(*group.arrays(start, stop), group.gradScale, scale)
        if self._dynamicScale():
            self.lossScaler.update(self.skip)  # on the device: backs off at a skipped step, counts a good one
        return guarded

    def finishUpdate(self, guarded):
        """``update``'s part on the host, after its launches (a replayed step runs it too): count the step, read
        the guard where it must be read now."""
        self.t += 1
        return self.guardStepped(guarded)

    def getStateTable(self):
        """Every state array, per Variable (``state.stateTable``): the same whichever mode the optimizer runs in."""
        self._checkReady("getStateTable")
        return stateTable(self.groups)

    def setupState(self, param):
        """The rule's state arrays, each shaped like ``param`` and filled with its ``State.fill``."""
        return {name: stateArray(param, state.fill) for name, state in self.rule.states.items()}

    def beforeRule(self):
        """Once per step, after the guard's check and before the rule's launches: what a rule needs computed on
        the device for the whole step (Adam's bias corrections). Nothing by default."""

    def hyperValues(self, learnRate):
        """The kernel's values for one launch, in the order of ``rule.launch`` (host floats; the kernel receives
        them in the compute type): the hyperparameters, with the Variable's ``learnRate`` for ``learnRate``."""
        return tuple(learnRate if name == "learnRate" else getattr(self, name) for name in self.rule.launch)

    def updateVar(self, param, grad, state, master, gradScale, scale):
        """One launch of the rule's kernel over arrays of one shape, at ``scale`` times the learning rate: the
        direct kernel, or the master kernel that steps ``master`` and writes ``param`` as its float16 copy. The
        hyperparameters are read again by a replayed step (a schedule changes them between steps)."""
        states = [state[name] for name in self.rule.states]
        values = liveValues(self.hyperValues(self.learnRate * scale), lambda: self.hyperValues(self.learnRate * scale))
        head = (grad, gradScale, self.skip, *values)
        if master is None:
            self.rule.direct(*head, param, *states)
        else:
            self.rule.master(*head, master, *states, param)
