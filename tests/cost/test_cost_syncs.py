"""Every cost trains without a host sync on the simulated device (its error stays a device scalar, its target checks
accumulate on the device), and a bad target still raises its clear error at the read point: ``readChecks()``, or
the cost's ``getMeanError()``."""

import numpy
import pytest

from minidl import CostError, backend
from minidl.backend import readChecks, toDevice
from minidl.cost import BCE, CTC, MSE, SVM, Abs, CrossEntropy, Hinge, KLDivergence, L1Hinge, Multi, SmoothL1
from minidl.nn import Linear
from minidl.optim import Adam

pytestmark = pytest.mark.skipif(not backend.isGpu, reason="syncs are counted on the simulated device "
                                                          "(MINIDL_BACKEND=simulated, CI's second run)")

BATCH, FEATURES, CLASSES, STEPS = 4, 5, 3, 6
rng = numpy.random.default_rng(7)


def floats(*shape):
    return rng.standard_normal(shape).astype(numpy.float32)


def softmaxRows(scores):
    exp = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True)).astype(numpy.float32)


# name -> (cost, number of network outputs, out features, good target, bad target, what the error says)
CASES = {
    "mse": (MSE, 1, CLASSES, lambda: floats(BATCH, CLASSES), None, None),
    "abs": (Abs, 1, CLASSES, lambda: floats(BATCH, CLASSES), None, None),
    "smoothl1": (SmoothL1, 1, CLASSES, lambda: floats(BATCH, CLASSES), None, None),
    "bce": (BCE, 1, CLASSES, lambda: rng.uniform(0, 1, (BATCH, CLASSES)).astype(numpy.float32),
            lambda: numpy.full((BATCH, CLASSES), 1.5, numpy.float32), r"targets must lie in \[0, 1\], got values in "
                                                                      r"\[1.5, 1.5\]"),
    "hinge": (Hinge, 1, CLASSES, lambda: rng.choice([-1.0, 1.0], (BATCH, CLASSES)).astype(numpy.float32),
              lambda: numpy.array([[1, -1, 1]] * (BATCH - 1) + [[1, 0.5, 1]], numpy.float32),
              "targets must be -1 or 1, got the value 0.5"),
    "svm": (SVM, 1, CLASSES, lambda: rng.integers(0, CLASSES, BATCH), lambda: numpy.array([0, 1, 7, 2]),
            "label 7 is out of range for 3 classes"),
    "kl": (KLDivergence, 1, CLASSES, lambda: softmaxRows(floats(BATCH, CLASSES)),
           lambda: numpy.full((BATCH, CLASSES), 0.5, numpy.float32), r"row sums in \[1.5, 1.5\]"),
    "crossentropy": (CrossEntropy, 1, CLASSES, lambda: rng.integers(0, CLASSES, BATCH),
                     lambda: numpy.array([0, -2, 1, 1]), "label -2 is out of range"),
    "l1hinge": (L1Hinge, 2, CLASSES, lambda: rng.integers(0, 2, BATCH), lambda: numpy.array([0, 1, 3, 1]),
                r"labels must be 0 \(dissimilar\) or 1 \(similar\), got values in \[0, 3\]"),
    "ctc": (CTC, 1, STEPS * CLASSES, lambda: (numpy.array([[1, 2], [2, 2], [1, 1], [2, 1]]),
                                               numpy.full(BATCH, STEPS), numpy.array([2, 2, 1, 0])),
            lambda: (numpy.array([[1, 2], [2, 0], [1, 1], [2, 1]]), numpy.full(BATCH, STEPS),
                     numpy.array([2, 2, 1, 0])),
            "differ from the blank 0; sequence 1 has 0 at position 1"),
    "multi": (lambda: Multi([MSE(), CrossEntropy()], [0.5, 2.0]), 2, CLASSES,
              lambda: [floats(BATCH, CLASSES), rng.integers(0, CLASSES, BATCH)],
              lambda: [floats(BATCH, CLASSES), numpy.array([0, 1, 2, 3])], "label 3 is out of range for 3 classes"),
}


def onDevice(target):
    if isinstance(target, (list, tuple)):
        return type(target)(toDevice(part) for part in target)
    return toDevice(target)


class Model:
    """One Linear per network output over a fixed batch, trained by Adam with its guard read outside the step."""

    def __init__(self, name):
        makeCost, self.outputs, width, self.good, self.bad, self.message = CASES[name]
        self.ctc = name == "ctc"
        self.cost = makeCost()
        self.layers = [Linear(FEATURES, width) for _ in range(self.outputs)]
        self.optimizers = [Adam(alpha=0.01).setupOn(layer, useGlobalState=True) for layer in self.layers]
        for optimizer in self.optimizers:
            optimizer.deferred = True
        self.data = toDevice(floats(BATCH, FEATURES))

    def step(self, target):
        preds = [layer(self.data) for layer in self.layers]
        if self.ctc:
            preds = [pred.reshape(BATCH, STEPS, CLASSES).transpose(1, 0, 2) for pred in preds]
        error, grad = self.cost(preds if self.outputs == 2 else preds[0], target)
        grads = grad if self.outputs == 2 else [grad]
        for layer, optimizer, g in zip(self.layers, self.optimizers, grads):
            if self.ctc:
                g = g.transpose(1, 0, 2).reshape(BATCH, STEPS * CLASSES)
            optimizer.zeroGradParams()
            layer.backward(g)
            optimizer.update()
        return error


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_training_step_makes_no_host_sync(name):
    from minidl.backend.simulated import trace

    model = Model(name)
    target = onDevice(model.good())
    errors = [model.step(target)]  # warm-up: first calls may set things up
    with trace.recording() as recorded:
        errors += [model.step(target) for _ in range(2)]
    assert [(event.what, event.where) for event in recorded.syncs] == []
    readChecks()
    values = [float(error) for error in errors]  # read when asked: after the steps
    assert numpy.isfinite(values).all() and values[2] < values[0]  # Adam lowers the error of a fixed batch
    assert model.cost.getMeanError() == pytest.approx(numpy.mean(values), rel=1e-12)


@pytest.mark.parametrize("name", sorted(name for name, case in CASES.items() if case[4] is not None))
def test_a_bad_target_raises_at_the_read_point_naming_what_was_expected(name):
    from minidl.backend.simulated import trace

    model = Model(name)
    model.step(onDevice(model.good()))
    with trace.recording() as recorded:
        model.step(onDevice(model.bad()))  # no sync: reported at the read
        model.step(onDevice(model.good()))
    assert recorded.summary()["syncs"] == 0
    with pytest.raises(CostError, match=model.message):
        readChecks()
    readChecks()  # reported once
    model.step(onDevice(model.bad()))
    with pytest.raises(CostError, match=model.message):
        model.cost.getMeanError()  # the cost's own read point
