"""Cost: scores predictions against targets.

``cost(pred, target)`` returns ``(error, grad)`` with ``grad = ∂error/∂pred`` and ``error`` a Python float on
the CPU; on a GPU every cost leaves its error on the device (``calcError`` returns a device scalar), returned as
a ``DeviceScalar`` that reads it only when used as a number, so that a training step holds no host sync.
``cost.validate(pred, target)`` returns the error alone. Both add the batch to an accumulator (on the device
where the error is): ``getMeanError()`` is the sample-weighted mean error since the last ``resetAccumulator()``,
a Python float (one read).
Checks of target values (labels in range, targets in [0, 1], ...) raise at the call on the CPU; on a GPU they
accumulate on the device (``noteRange``, ``noteValues``: ``minidl.backend.devicecheck``) and raise with the same
message at the next read: ``readChecks()`` (the cost's own; the Trainer reads every check after each macro-batch
and epoch through ``minidl.backend.readChecks``) and ``getMeanError()``, which reads them first. Until then a kernel
given a bad target reads no memory out of bounds (labels are clamped) and its error is whatever the arithmetic
gives.
A subclass implements ``checkTarget``, ``calcError`` and ``calcGrad`` (or ``calcErrorAndGrad`` when the two
share work). A cost whose gradient is elementwise in (pred, target), divided by the size to average, names its
kernel, made by ``meanGradKernel``, as ``gradKernel`` instead of writing ``calcGrad``.
"""

import numpy

from minidl.backend import Elementwise, RangeCheck, ValueCheck, isDeviceArray, xp
from minidl.backend.devicescalar import DeviceScalar
from minidl.backend.tape import recordingNow
from minidl.errors import CostError
from minidl.nn.module import describe


def _accumulateNumpy(error, samples, total):
    total += error.astype(numpy.float64) * samples


accumulateKer = Elementwise("minidl_cost_accumulate", "T error, float64 samples", "float64 total",
                            "total += (double)error * samples", _accumulateNumpy)


def meanGradKernel(name, operation, reference):
    """The Elementwise kernel of an elementwise gradient: (T pred, T target, T scale) -> T grad."""
    return Elementwise(name, "T pred, T target, T scale", "T grad", operation, reference)


class Cost:
    def __init__(self):
        self.deviceChecks = {}  # name -> the RangeCheck or ValueCheck of one condition on this cost's targets
        self.resetAccumulator()

    def __repr__(self):
        return type(self).__name__

    def __call__(self, pred, target):
        pred, target = self.checkInput(pred, target)
        error, grad = self.calcErrorAndGrad(pred, target)
        return self.accumulate(error, self.batchSize(pred)), grad

    def validate(self, pred, target):
        pred, target = self.checkInput(pred, target)
        return self.accumulate(self.calcError(pred, target), self.batchSize(pred))

    def batchSize(self, pred):
        """The samples in a batch of predictions, the accumulator's weight: axis 0 (CTC's sequences: axis 1)."""
        return pred.shape[0]

    def accumulate(self, error, samples):
        """Add a batch's error (a float, or a device scalar: the sum stays on the device) times its samples;
        return the error as the caller gets it: a Python float on the CPU, a DeviceScalar on a GPU."""
        self.samples += samples
        if isDeviceArray(error) or recordingNow():  # a captured step keeps its error where a GPU does
            if isinstance(self.accumErr, float):
                self.accumErr = error.astype(numpy.float64) * samples + self.accumErr  # summed as floats would be
            else:
                accumulateKer(error, samples, self.accumErr)  # in place: a replayed step adds into the same array
            return DeviceScalar(error)
        self.accumErr += float(error) * samples
        return float(error)

    def noteRange(self, name, values, bound, fail):
        """Integers ``values`` must lie in [0, bound); else ``fail(low, high, bound)`` raises (at the read on a GPU)."""
        if name not in self.deviceChecks:
            self.deviceChecks[name] = RangeCheck(fail)
        self.deviceChecks[name].note(values, bound)

    def noteValues(self, name, bad, values, fail):
        """``bad`` (a boolean device scalar) must be false; else ``fail(*values)`` raises, the device scalars
        ``values`` read as floats (at the read on a GPU)."""
        if name not in self.deviceChecks:
            self.deviceChecks[name] = ValueCheck(fail)
        self.deviceChecks[name].note(bad, *values)

    def readChecks(self):
        """Raise the error of the first bad batch this cost saw on a GPU since the last read (nothing on the CPU,
        where a bad batch raised at its call)."""
        for check in self.deviceChecks.values():
            check.read()

    def getMeanError(self):
        self.readChecks()
        if self.samples == 0:
            raise CostError(f"{self!r}: no batch was scored since the accumulator was reset")
        return float(self.accumErr) / self.samples

    def resetAccumulator(self):
        self.setSums(0.0, 0)

    def setSums(self, errorSum, samples):
        """Set the accumulator to a sum of errors times samples and its samples (a resumed epoch's); an array
        accumulator is written in place, where a captured step adds."""
        if isinstance(getattr(self, "accumErr", 0.0), float):
            self.accumErr = float(errorSum)
        else:
            self.accumErr[...] = errorSum
        self.samples = samples

    def checkInput(self, pred, target):
        """Check pred and target; return them C-contiguous (as the gradient kernels take them: views are copied)."""
        if not isinstance(pred, xp.ndarray) or not numpy.issubdtype(pred.dtype, numpy.floating):
            raise CostError(f"{self!r}: predictions must be a floating {xp.__name__} array, got {describe(pred)}")
        if pred.ndim == 0 or pred.size == 0:
            raise CostError(f"{self!r}: predictions must be non-empty with a batch axis, got shape {pred.shape}")
        if not isinstance(target, xp.ndarray):
            raise CostError(f"{self!r}: target must be a {xp.__name__} array, got {describe(target)}")
        self.checkTarget(pred, target)
        return xp.ascontiguousarray(pred), xp.ascontiguousarray(target)

    def checkTarget(self, pred, target):
        """Default: a target of the predictions' shape and dtype."""
        if target.shape != pred.shape or target.dtype != pred.dtype:
            raise CostError(
                f"{self!r}: target must be {pred.dtype} {pred.shape} like the predictions, got {describe(target)}"
            )

    def checkLabels(self, pred, target):
        """For classification costs: scores (batch, classes) and integer labels (batch,) in [0, classes)."""
        if pred.ndim != 2:
            raise CostError(f"{self!r}: scores must have shape (batch, classes), got {pred.shape}")
        if not numpy.issubdtype(target.dtype, numpy.integer) or target.shape != pred.shape[:1]:
            raise CostError(f"{self!r}: labels must be integers of shape ({pred.shape[0]},), got {describe(target)}")
        self.noteRange("labels", target, pred.shape[1], self._labelError)

    def _labelError(self, low, high, classes):
        raise CostError(f"{self!r}: label {low if low < 0 else high} is out of range for {classes} classes")

    @staticmethod
    def clampLabels(labels, classes):
        """Labels clipped into [0, classes) as int32: on a GPU a bad label (reported at the next read) reads no
        memory out of bounds meanwhile. On the CPU a bad label has raised already, and this only converts."""
        return xp.clip(labels, 0, classes - 1).astype(numpy.int32, copy=False)

    def calcErrorAndGrad(self, pred, target):
        return self.calcError(pred, target), self.calcGrad(pred, target)

    def calcError(self, pred, target):
        raise NotImplementedError

    gradKernel = None  # a meanGradKernel: calcGrad runs it with scale = 1 / pred.size

    def calcGrad(self, pred, target):
        if self.gradKernel is None:
            raise NotImplementedError
        return self.gradKernel(pred, target, 1.0 / pred.size, xp.empty_like(pred))
