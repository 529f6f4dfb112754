"""An optimizer's state on disk, with no per-optimizer code: ``save(path)``/``load(path)`` keep it in a safetensors
file whose tensors are ``getStateTable()`` and whose metadata are the class name and ``getAttrDict()`` as JSON (the
hyperparameters, ``t``, the number of steps taken (Adam's bias correction reads it), ``skippedSteps`` and the loss
scaler's state). State that no run can produce (NaN, inf, negative values of a non-negative ``State``) is refused
on load; checkpoints (``minidl.train.checkpoint``) use the same pieces."""

import json
import math

import numpy

from minidl.backend import toHost
from minidl.errors import CheckpointError, MinidlError, OptimizerError
from minidl.tensorfile import TensorFile, copyTensorsAfter, parseJson, writeTensors

OPTIMIZER_FORMAT = "minidl.optimizer"


class Persistence:
    """The attributes and the save/load part of an Optimizer."""

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
        """Safetensors metadata for the class and ``getAttrDict()``: ``optimizer`` and ``attrs`` (JSON). The
        non-finite guard is read first: inside ``deferGuard`` a skipped step counts in ``t`` until it is read, and
        a file must hold the true ``t`` and ``skippedSteps``."""
        self.readGuard()
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
        copyTensorsAfter(path, lambda: self.setAttrDict(attrs), MinidlError, targets, tensors)
        self.clearGuard()  # a step skipped before the load, not yet read, is none of the loaded run's
        return self

    def checkLoadedState(self, tensors, path):
        """CheckpointError unless every state (and master) tensor of ``tensors`` (host arrays named as in
        ``getStateTable()``) is finite, and those of the rule's non-negative states (accumulated squares) are
        >= 0."""
        for name, array in tensors.items():
            state = self.rule.states.get(name.rsplit(".", 1)[-1])
            array = numpy.asarray(array)
            if not numpy.isfinite(array).all():
                raise CheckpointError(f"{path}: optimizer state {name!r} holds NaN or inf, which no step can produce")
            if state is not None and state.nonNegative and (array < 0).any():
                raise CheckpointError(f"{path}: optimizer state {name!r} holds negative values ({array.min()!r}), "
                                      "but it accumulates squares")
