"""Checks of a whole host data set, run before a Trainer or Validator changes anything (a step, a random draw).

Everything is checked in chunks of rows, so the checks need no more memory than the training itself:
floating data and targets must be finite; one sample through the module in evalMode (which changes no
parameter, buffer or random state) gives the predictions' shape and checks the samples' shape and dtype; the
cost checks every target against predictions of that shape (labels in range, targets in their domain).
"""

import numpy

from minidl.backend import readChecks, toDevice, xp
from minidl.cost import Cost
from minidl.errors import CostError, DataError, ModuleError, OptimizerError
from minidl.nn import Module
from minidl.nn.module import evaluating
from minidl.optim import Optimizer


def checkParts(who, module, cost, optimizer=None):
    """The parts ``who`` (a Trainer, a Validator, a captured step) is given: a Module, a Cost and, for training, an
    Optimizer set up on that module; the error of the part that is wrong, naming what was given."""
    if not isinstance(module, Module):
        raise ModuleError(f"{who} expects a Module, got {type(module).__name__}")
    if not isinstance(cost, Cost):
        raise CostError(f"{who} expects a Cost, got {type(cost).__name__}")
    if optimizer is None:
        return
    if not isinstance(optimizer, Optimizer):
        raise OptimizerError(f"{who} expects an Optimizer, got {type(optimizer).__name__}")
    optimizer.checkSetUpOn(module)


def checkFinite(array, name, chunkRows):
    """DataError naming the first row of a floating ``array`` that holds NaN or an infinity."""
    if not numpy.issubdtype(array.dtype, numpy.floating):
        return
    for start in range(0, len(array), chunkRows):
        finite = numpy.isfinite(array[start:start + chunkRows]).reshape(min(chunkRows, len(array) - start), -1)
        rows = finite.all(axis=1)
        if not rows.all():
            raise DataError(f"{name} row {start + int(numpy.argmin(rows))} holds NaN or infinity")


def predictionShape(module, data):
    """The module's output for one sample (its shape and dtype): one evalMode forward pass, every module's mode
    put back. A sample the module refuses raises its ModuleError here."""
    with evaluating(module):
        return module(toDevice(numpy.ascontiguousarray(data[:1])))


def checkDataSet(module, cost, data, target, chunkRows):
    """DataError (or the module's ModuleError) unless every row of ``data`` and ``target`` can be scored."""
    checkFinite(data, "data", chunkRows)
    checkFinite(target, "target", chunkRows)
    sample = predictionShape(module, data)
    for start in range(0, len(target), chunkRows):
        chunk = toDevice(numpy.ascontiguousarray(target[start:start + chunkRows]))
        predictions = xp.broadcast_to(sample[0], (len(chunk), *sample.shape[1:]))  # a shape, no memory
        try:
            cost.checkTarget(predictions, chunk)
            readChecks()  # on a GPU the labels' range is read here, before training, not in a step
        except CostError as error:
            raise DataError(f"target rows {start} to {start + len(chunk) - 1}: {error}") from error


def checkLoader(module, cost, loader):
    """DataError (or the module's ModuleError) unless the module takes the loader's samples and every label of
    its listing can be scored: one zero sample of its shape through the module, the labels through the cost."""
    sample = predictionShape(module, numpy.zeros((1, *loader.sampleShape), dtype=loader.dtype))
    labels = toDevice(loader.labels)
    try:
        cost.checkTarget(xp.broadcast_to(sample[0], (len(labels), *sample.shape[1:])), labels)
        readChecks()  # on a GPU the labels' range is read here, before training, not in a step
    except CostError as error:
        raise DataError(f"the labels of {loader!r}: {error}") from error
