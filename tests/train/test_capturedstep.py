"""A captured training step (minidl.train.capturedstep) against ordinary steps: the same bits in every parameter, state
array, counter and random state after replays, with the guard, loss scaling, schedules and hooks at work; what it
refuses runs ordinarily, said once."""

import hashlib
import logging

import numpy
import pytest

import minidl
from minidl import backend, nn
from minidl.backend import products
from minidl.cost import CrossEntropy
from minidl.datasets import loadDigits
from minidl.errors import CostError, ModuleError, OptimizerError
from minidl.models import LANGUAGE_MODELS, MODELS
from minidl.optim import SGD, AdaGrad, Adam, LossScaler, MomentumSGD, RMSProp
from minidl.optim.hooks import GradientClip, WeightDecay
from minidl.train import Trainer

NETWORKS = {"mlp": (64,), "cnn": (1, 8, 8), "lenet": (1, 28, 28), "lstm": (8, 16)}


def batches(shape, count, batch=16, seed=0):
    rng = numpy.random.default_rng(seed)
    return [(backend.toDevice(rng.standard_normal((batch, *shape)).astype(numpy.float32)),
             backend.toDevice(rng.integers(0, 10, batch).astype(numpy.int32))) for _ in range(count)]


def state(net, optimizer, cost):
    """Every number a run leaves: parameters, gradients, optimizer state, buffers, counters, random state."""
    arrays = [*(var.data for var in net.getVarTable().values()), *(var.grad for var in net.getVarTable().values()),
              *net.getBufferTable().values(),
              *optimizer.getStateTable().values()]
    digest = hashlib.sha256(b"".join(backend.toHost(array).tobytes() for array in arrays)).hexdigest()
    return (digest, optimizer.t, optimizer.skippedSteps,
            numpy.float64(cost.accumErr).tobytes(), cost.samples, str(backend.getRandomState()))


def run(name, makeOptimizer, capture, steps=10, data=None, between=None, **setup):
    backend.seed(0)
    net = MODELS[name].build(NETWORKS[name], 10)
    optimizer = makeOptimizer().setupOn(net, **{"useGlobalState": True, **setup})
    cost = CrossEntropy()
    step = minidl.capture(net, cost, optimizer) if capture else None
    net.trainMode()
    errors = []
    for index, (batch, labels) in enumerate(data or batches(NETWORKS[name], steps)):
        if between is not None:
            between(index, optimizer)
        if step is not None:
            errors.append(step(batch, labels))
        else:
            errors.append(Trainer(net, cost, optimizer, capture=False, verbose=False).step(batch, labels))
    return state(net, optimizer, cost), [float(error) for error in errors], step


def replays(step):
    """Whether every shape's step replayed: on the CPU from its sixth call (a tape), on a device from its fourth (a
    CUDA graph)."""
    first = 4 if backend.isGpu else 6
    return bool(step.recordings) and all(not recording.refused and recording.calls >= first and
                                         (recording.graph is not None) == backend.isGpu
                                         for recording in step.recordings.values())


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("makeOptimizer", [AdaGrad, Adam, lambda: MomentumSGD(0.01), lambda: RMSProp(0.01),
                                           lambda: SGD(0.05)], ids=["adagrad", "adam", "momentum", "rmsprop", "sgd"])
def test_replayed_steps_leave_the_bits_of_ordinary_steps(name, makeOptimizer):
    ordinary, ordinaryErrors, _ = run(name, makeOptimizer, capture=False)
    captured, capturedErrors, step = run(name, makeOptimizer, capture=True)
    assert captured == ordinary and capturedErrors == ordinaryErrors
    assert replays(step)


@pytest.mark.parametrize("clearedBefore", [1, 2])
def test_a_row_of_ones_first_made_while_a_step_records_is_a_constant_of_the_tape(clearedBefore):
    # products.columnSums keeps its rows of ones for good: made inside a recording (the second and third steps
    # record), one must not be taken for an array of the step, which the next recording would not make (xp.ones:
    # capture refused)
    def clear(index, optimizer):
        if index == clearedBefore:
            products._onesRow.cache_clear()

    ordinary, ordinaryErrors, _ = run("mlp", AdaGrad, capture=False)
    captured, capturedErrors, step = run("mlp", AdaGrad, capture=True, between=clear)
    assert captured == ordinary and capturedErrors == ordinaryErrors
    assert replays(step)


@pytest.mark.parametrize("name", ["transformer", "lstm"])
def test_language_models_replay_the_bits_of_ordinary_steps(name):
    """Embedder indices (time, batch), dropout drawn in the attention and between the layers, a graph of blocks."""
    def train(capture):
        backend.seed(0)
        net = LANGUAGE_MODELS[name](30, dropout=0.1)
        optimizer = Adam().setupOn(net, useGlobalState=True)
        cost = CrossEntropy()
        step = minidl.capture(net, cost, optimizer) if capture else Trainer(net, cost, optimizer, capture=False).step
        rng = numpy.random.default_rng(1)
        errors = [step(backend.toDevice(rng.integers(0, 30, (6, 4)).astype(numpy.int32)),
                       backend.toDevice(rng.integers(0, 30, 24).astype(numpy.int32))) for _ in range(9)]
        return state(net, optimizer, cost), [float(error) for error in errors], step

    ordinary, captured = train(False), train(True)
    assert captured[:2] == ordinary[:2] and replays(captured[2])


@pytest.mark.parametrize("mode", ["skip", "raise"])
def test_a_non_finite_step_is_skipped_or_raised_as_in_an_ordinary_step(mode):
    data = batches((64,), 10)
    data[8] = (data[8][0] * numpy.float32(numpy.inf), data[8][1])  # after the check: a replayed step

    def guard(index, optimizer):
        optimizer.nonFinite = mode

    def outcome(capture):
        try:
            return run("mlp", AdaGrad, capture=capture, data=data, between=guard)[0]
        except OptimizerError as error:
            return str(error)

    ordinary = outcome(False)
    assert outcome(True) == ordinary
    assert ordinary[2] == 1 if mode == "skip" else "non-finite gradient (NaN or inf) at step 9" in ordinary


def test_dynamic_loss_scaling_backs_off_and_grows_as_in_ordinary_steps():
    def scaler():
        return LossScaler(scale=2.0**24, growthInterval=2)  # grows and backs off while the steps replay

    ordinary = run("mlp", AdaGrad, capture=False, steps=14, lossScaler=scaler())
    captured = run("mlp", AdaGrad, capture=True, steps=14, lossScaler=scaler())
    assert captured[:2] == ordinary[:2]


@pytest.mark.parametrize("growthInterval", [2, 7])
def test_replays_scale_the_gradient_by_the_scale_of_their_own_step(growthInterval):
    # the scale doubles every growthInterval steps: during the recordings, or only after the check (7), where a
    # replay that multiplied the cost's gradient by the scale it was recorded with, but unscaled it by the new one,
    # would take steps of the wrong size (SGD's step is proportional to the gradient)
    def scaler():
        return LossScaler(scale=2.0**4, growthInterval=growthInterval)

    ordinary = run("mlp", lambda: SGD(0.05), capture=False, steps=14, lossScaler=scaler())
    captured = run("mlp", lambda: SGD(0.05), capture=True, steps=14, lossScaler=scaler())
    assert captured[:2] == ordinary[:2]
    assert replays(captured[2])


def test_hooks_and_a_changed_rate_are_followed(caplog):
    def hooks(index, optimizer):
        if index == 0:
            optimizer.addHook(WeightDecay(1e-3))
            optimizer.addHook(GradientClip(0.5))
        if index == 9:
            optimizer.learnRate /= 2  # a schedule per epoch: every shape records again

    ordinary = run("cnn", AdaGrad, capture=False, steps=18, between=hooks)
    with caplog.at_level(logging.WARNING, logger="minidl"):
        captured = run("cnn", AdaGrad, capture=True, steps=18, between=hooks)
    assert captured[:2] == ordinary[:2] and replays(captured[2]) and not caplog.records


@pytest.mark.parametrize("useGlobalState", [False, True])
def test_a_new_setup_of_the_optimizer_between_replays_is_followed(useGlobalState):
    # setupOn again makes new state arrays (and in local state rebinds no Variable): the replays must step those,
    # from Adam's fresh state and t = 0, not the arrays of the setup they were recorded with
    def setup(index, optimizer):
        if index == 8:
            optimizer.setupOn(optimizer.module, useGlobalState=useGlobalState)

    ordinary = run("mlp", Adam, capture=False, steps=16, between=setup, useGlobalState=useGlobalState)
    captured = run("mlp", Adam, capture=True, steps=16, between=setup, useGlobalState=useGlobalState)
    assert captured[:2] == ordinary[:2] and captured[0][1] == 8
    assert replays(captured[2])


def test_a_module_setting_changed_between_replays_is_followed():
    def dropout(index, optimizer):
        if index == 11:  # replays have begun: the next step records again with the new rate
            next(module for module in optimizer.module.walk() if isinstance(module, nn.Dropout)).p = 0.6

    ordinary = run("cnn", AdaGrad, capture=False, steps=20, between=dropout)
    captured = run("cnn", AdaGrad, capture=True, steps=20, between=dropout)
    assert captured[:2] == ordinary[:2] and replays(captured[2])


def test_a_rate_changed_at_every_step_is_read_by_each_replay(caplog):
    def schedule(index, optimizer):
        optimizer.learnRate = 0.01 / (1 + index)

    ordinary = run("mlp", Adam, capture=False, steps=12, between=schedule)
    with caplog.at_level(logging.WARNING, logger="minidl"):
        captured = run("mlp", Adam, capture=True, steps=12, between=schedule)
    assert captured[:2] == ordinary[:2] and replays(captured[2]) and not caplog.records


def test_modes_changed_at_every_step_turn_capture_off_said_once(caplog):
    def toggle(index, optimizer):
        optimizer.module.modules[0].evalMode() if index % 2 else optimizer.module.modules[0].trainMode()

    ordinary = run("cnn", AdaGrad, capture=False, steps=12, between=toggle)
    with caplog.at_level(logging.WARNING, logger="minidl"):
        captured = run("cnn", AdaGrad, capture=True, steps=12, between=toggle)
    assert captured[:2] == ordinary[:2]
    assert [record.getMessage() for record in caplog.records] == [
        "minidl: training steps run uncaptured: the step's settings (modes, hooks, Variables' scales) change at "
        "every step"]


class HostRead(nn.Module):
    """Reads a value on the host in its forward pass: nothing a tape can replay."""

    def updData(self, data):
        return data * float(data.max())

    def updGrad(self, grad):
        return grad


def test_a_step_that_cannot_be_replayed_runs_ordinarily_said_once(caplog):
    def build():
        backend.seed(0)
        net = nn.Sequential().extend([nn.Linear(8, 4), HostRead(), nn.Linear(4, 3)])
        optimizer = AdaGrad().setupOn(net)
        return net, optimizer, CrossEntropy()

    data = [(backend.toDevice(numpy.random.default_rng(seed).standard_normal((5, 8)).astype(numpy.float32)),
             backend.toDevice(numpy.arange(5, dtype=numpy.int32) % 3)) for seed in range(8)]
    net, optimizer, cost = build()
    for batch, labels in data:
        Trainer(net, cost, optimizer, capture=False, verbose=False).step(batch, labels)
    expected = state(net, optimizer, cost)
    net, optimizer, cost = build()
    step = minidl.capture(net, cost, optimizer)
    with caplog.at_level(logging.WARNING, logger="minidl"):
        for batch, labels in data:
            step(batch, labels)
    assert state(net, optimizer, cost) == expected
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1 and "(5, 8) and (5,) runs uncaptured" in messages[0] and "host" in messages[0]


def test_trainer_epochs_are_the_same_captured_or_not():
    digits = loadDigits()
    results = []
    for capture in (False, True):
        backend.seed(0)
        net = MODELS["mlp"].build((64,), 10)
        optimizer = Adam().setupOn(net, useGlobalState=True)
        trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=100, verbose=False, capture=capture)
        errors = [trainer.trainFromHost(digits.trainData, digits.trainLabels) for _ in range(2)]
        results.append((errors, state(net, optimizer, trainer.cost)))
    assert results[0] == results[1]


def test_bad_arguments_are_refused():
    net = MODELS["mlp"].build((64,), 10)
    optimizer = AdaGrad().setupOn(net)
    with pytest.raises(ModuleError, match="a captured step expects a Module, got str"):
        minidl.capture("net", CrossEntropy(), optimizer)
    with pytest.raises(CostError, match="expects a Cost, got NoneType"):
        minidl.capture(net, None, optimizer)
    with pytest.raises(OptimizerError, match="is not set up on"):
        minidl.capture(MODELS["mlp"].build((64,), 10), CrossEntropy(), optimizer)
    with pytest.raises(Exception, match="capture must be True or False, got 'yes'"):
        Trainer(net, CrossEntropy(), optimizer, capture="yes")


@pytest.mark.skipif(backend.isGpu, reason="a device checks labels on the device and reads the check later "
                                          "(minidl.backend.devicecheck): no step raises")
def test_a_step_that_raises_while_capture_checks_counts_for_nothing():
    data = batches((64,), 12)
    data[4] = (data[4][0], data[4][1] + 20)  # labels out of range: the fifth call, the check's ordinary step, raises

    def train(capture):
        backend.seed(0)
        net = MODELS["mlp"].build((64,), 10)
        optimizer = AdaGrad().setupOn(net, useGlobalState=True)
        cost = CrossEntropy()
        step = minidl.capture(net, cost, optimizer) if capture else Trainer(net, cost, optimizer, capture=False).step
        raised = []
        for index, (batch, labels) in enumerate(data):
            try:
                step(batch, labels)
            except CostError as error:
                raised.append((index, str(error)))
        return state(net, optimizer, cost), raised, step

    ordinary, captured = train(False), train(True)
    assert captured[:2] == ordinary[:2] and ordinary[1][0][0] == 4 and replays(captured[2])


def _offsetNumpy(x, offset, y):
    y[...] = x + offset


offsetKer = backend.Elementwise("test_step_offset", "T x, T offset", "T y", "y = x + offset", _offsetNumpy)


class Counting(nn.Module):
    """Adds to its input a count of its passes kept in a list (no setting a captured step watches): a number its
    kernel takes that changes at every step and reaches it as a plain argument, not a live value."""

    def __init__(self):
        super().__init__(None)
        self.counter = [0]

    def updData(self, data):
        self.counter[0] += 1
        return offsetKer(data, self.counter[0], backend.xp.empty_like(data))

    def updGrad(self, grad):
        return grad


def test_a_number_that_changes_at_every_step_but_is_not_live_refuses_the_capture(caplog):
    """The tape (CPU) compares two recordings, the graph (device) its captured kernels' numbers with the next
    step's: either way the number would be frozen in a replay, so the shape runs ordinarily, said once."""
    data = batches((8,), 8, batch=5)

    def train(capture):
        backend.seed(0)
        net = nn.Sequential().extend([nn.Linear(8, 4), Counting(), nn.Linear(4, 10)])
        optimizer = AdaGrad().setupOn(net, useGlobalState=True)
        cost = CrossEntropy()
        step = minidl.capture(net, cost, optimizer) if capture else Trainer(net, cost, optimizer, capture=False).step
        errors = [float(step(batch, labels)) for batch, labels in data]
        return state(net, optimizer, cost), errors

    ordinary = train(False)
    with caplog.at_level(logging.WARNING, logger="minidl"):
        captured = train(True)
    assert captured == ordinary
    messages = [record.getMessage() for record in caplog.records]
    why = "test_step_offset's offset" if backend.isGpu else "take an argument that changes from call to call"
    assert len(messages) == 1 and "runs uncaptured" in messages[0] and why in messages[0], messages
