"""Schedules against PyTorch's scheduler formulas written out here in their recursive (chainable) form, and against
torch itself where it is installed."""

import json
import math

import numpy
import pytest

from minidl.errors import OptimizerError
from minidl.nn import Linear
from minidl.optim import SGD, Adam, RMSPropGraves
from minidl.optim.schedules import (
    CosineSchedule,
    ExponentialSchedule,
    MultiStepSchedule,
    OneCycleSchedule,
    PlateauSchedule,
    StepSchedule,
)
from tests.optional import importTorch

STEPS = 40


def sgd(learnRate=0.1):
    return SGD(learnRate=learnRate).setupOn(Linear(2, 2))


def rates(schedule, steps=STEPS):
    """The optimizer's rate at step 0 (after construction) and after each of ``steps`` calls of step()."""
    values = [schedule.learnRate]
    for _ in range(steps):
        schedule.step()
        values.append(schedule.learnRate)
    return values


def chained(base, factorAt, steps=STEPS):
    """Rates of a chainable scheduler: rate(0) = base · factorAt(0), rate(t) = rate(t − 1) · factorAt(t)."""
    values = [base * factorAt(0)]
    for t in range(1, steps + 1):
        values.append(values[-1] * factorAt(t))
    return values


def torchCosineRecursive(base, tMax, etaMin, steps=STEPS):
    """CosineAnnealingLR's get_lr, step by step."""
    values = [base]
    for t in range(1, steps + 1):
        last = values[-1]
        if (t - 1 - tMax) % (2 * tMax) == 0:
            values.append(last + (base - etaMin) * (1 - math.cos(math.pi / tMax)) / 2)
        else:
            ratio = (1 + math.cos(math.pi * t / tMax)) / (1 + math.cos(math.pi * (t - 1) / tMax))
            values.append(ratio * (last - etaMin) + etaMin)
    return values


def torchOneCycle(maxLr, total, pctStart=0.3, divFactor=25.0, finalDivFactor=1e4):
    """OneCycleLR's get_lr for every step 0..total (two phases, cosine annealing)."""
    initial = maxLr / divFactor
    phases = [(float(pctStart * total) - 1, initial, maxLr), (float(total - 1), maxLr, initial / finalDivFactor)]
    values = []
    for t in range(total + 1):
        start = 0.0
        for i, (end, startLr, endLr) in enumerate(phases):
            if t <= end or i == len(phases) - 1:
                pct = (t - start) / (end - start)
                values.append(endLr + (startLr - endLr) / 2.0 * (math.cos(math.pi * pct) + 1))
                break
            start = end
    return values


def torchPlateau(base, metrics, mode, factor, patience, threshold, cooldown, minLr, eps=1e-8):
    """ReduceLROnPlateau's step (relative threshold) over a sequence of metrics."""
    lr, best, bad, cooling, values = base, (math.inf if mode == "min" else -math.inf), 0, 0, []
    for metric in metrics:
        better = metric < best * (1 - threshold) if mode == "min" else metric > best * (threshold + 1)
        if better:
            best, bad = metric, 0
        else:
            bad += 1
        if cooling > 0:
            cooling -= 1
            bad = 0
        if bad > patience:
            new = max(lr * factor, minLr)
            if lr - new > eps:
                lr = new
            cooling, bad = cooldown, 0
        values.append(lr)
    return values


METRICS = [1.0, 0.9, 0.9, 0.95, 0.91, 0.8999, 0.89, 0.9, 0.9, 0.9, 0.9, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]


def test_step_schedule_is_steplr():
    expected = chained(0.1, lambda t: 0.5 if t > 0 and t % 7 == 0 else 1.0)
    numpy.testing.assert_allclose(rates(StepSchedule(sgd(), stepSize=7, gamma=0.5)), expected, rtol=1e-13)


def test_multistep_schedule_is_multisteplr():
    milestones = [3, 10, 10, 25]
    expected = chained(0.1, lambda t: 0.3 ** milestones.count(t))
    numpy.testing.assert_allclose(rates(MultiStepSchedule(sgd(), milestones, gamma=0.3)), expected, rtol=1e-13)


def test_exponential_schedule_is_exponentiallr():
    expected = chained(0.1, lambda t: 0.9 if t > 0 else 1.0)
    numpy.testing.assert_allclose(rates(ExponentialSchedule(sgd(), gamma=0.9)), expected, rtol=1e-12)


@pytest.mark.parametrize("minLearnRate", [0.0, 0.01])
def test_cosine_schedule_without_warmup_is_cosineannealinglr(minLearnRate):
    # 40 steps over total = 15: past the end the rate rises again, as PyTorch's does.
    expected = torchCosineRecursive(0.1, 15, minLearnRate)
    actual = rates(CosineSchedule(sgd(), total=15, minLearnRate=minLearnRate))
    numpy.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-15)


def test_cosine_schedule_warms_up_linearly_from_zero_then_anneals():
    actual = rates(CosineSchedule(sgd(0.2), total=30, minLearnRate=0.02, warmup=5), steps=30)
    warm = [0.2 * t / 5 for t in range(5)]
    anneal = torchCosineRecursive(0.2, 25, 0.02, steps=25)
    numpy.testing.assert_allclose(actual, warm + anneal, rtol=1e-10)
    assert actual[0] == 0.0 and actual[5] == pytest.approx(0.2) and actual[30] == pytest.approx(0.02)


@pytest.mark.parametrize("total", [10, 37, 100])
def test_one_cycle_schedule_is_onecyclelr_and_sets_its_starting_rate(total):
    schedule = OneCycleSchedule(sgd(123.0), maxLearnRate=0.5, total=total)
    actual = rates(schedule, steps=total)
    numpy.testing.assert_allclose(actual, torchOneCycle(0.5, total), rtol=1e-12)
    assert actual[0] == pytest.approx(0.5 / 25)
    with pytest.raises(OptimizerError, match="past its end"):
        schedule.step()


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("cooldown", [0, 2])
def test_plateau_schedule_is_reducelronplateau(mode, cooldown):
    metrics = METRICS if mode == "min" else [-value for value in METRICS]
    schedule = PlateauSchedule(sgd(), factor=0.5, patience=2, threshold=0.01, mode=mode, cooldown=cooldown,
                               minLearnRate=0.02)
    actual = []
    for metric in metrics:
        schedule.step(metric)
        actual.append(schedule.learnRate)
    expected = torchPlateau(0.1, metrics, mode, 0.5, 2, 0.01, cooldown, 0.02)
    assert actual == expected
    assert len(set(expected)) >= 3  # the metrics make it reduce the rate at least twice


def test_schedules_drive_adams_alpha():
    optimizer = Adam(alpha=0.01).setupOn(Linear(2, 2))
    schedule = ExponentialSchedule(optimizer, gamma=0.5)
    schedule.step()
    assert optimizer.alpha == 0.005


def test_schedules_drive_the_learning_rate_of_an_optimizer_whose_alpha_is_another_hyperparameter():
    # RMSPropGraves's alpha is its averaging factor: the rate a schedule drives is its learnRate
    optimizer = RMSPropGraves(learnRate=0.01, alpha=0.95).setupOn(Linear(2, 2))
    schedule = ExponentialSchedule(optimizer, gamma=0.5)
    schedule.step()
    assert optimizer.learnRate == 0.005 and optimizer.alpha == 0.95 and schedule.learnRate == 0.005


def makeAll(optimizer):
    return [
        StepSchedule(optimizer, 3), MultiStepSchedule(optimizer, [2, 5]), ExponentialSchedule(optimizer, 0.9),
        CosineSchedule(optimizer, 20, 0.001, warmup=4), OneCycleSchedule(optimizer, 1.0, 20),
        PlateauSchedule(optimizer),
    ]


@pytest.mark.parametrize("index", range(6))
def test_a_restored_state_continues_exactly(index):
    """Seven steps, state through JSON into a fresh schedule (the optimizer at another rate), seven more."""
    metrics = iter([3.0, 2.0, 2.5, 2.5, 2.5, 2.0] * 4)

    def advance(schedule, count):
        out = []
        for _ in range(count):
            schedule.step(next(metrics)) if schedule.needsMetric else schedule.step()
            out.append(schedule.learnRate)
        return out

    first = sgd(0.1)
    original = makeAll(first)[index]
    advance(original, 7)
    state = json.loads(json.dumps(original.getAttrDict()))
    resumed = makeAll(sgd(0.7))[index]
    resumed.setAttrDict(state)
    assert resumed.learnRate == original.learnRate
    rest = list(metrics)
    metrics = iter(rest)
    expected = advance(original, 7)
    metrics = iter(rest)
    assert advance(resumed, 7) == expected


def test_bad_settings_and_states_raise_and_change_nothing():
    optimizer = sgd(0.1)
    for make in (lambda: StepSchedule(optimizer, 0), lambda: MultiStepSchedule(optimizer, []),
                 lambda: CosineSchedule(optimizer, 10, warmup=10), lambda: OneCycleSchedule(optimizer, 1.0, 2),
                 lambda: PlateauSchedule(optimizer, mode="up"), lambda: ExponentialSchedule(optimizer, -1.0),
                 lambda: StepSchedule(object(), 3)):
        with pytest.raises(OptimizerError):
            make()
    assert optimizer.learnRate == 0.1
    schedule = StepSchedule(optimizer, 2, gamma=0.5)
    schedule.step()
    with pytest.raises(OptimizerError, match="entries"):
        schedule.setAttrDict({"t": 3})
    with pytest.raises(OptimizerError):
        schedule.setAttrDict({"t": -1, "baseLearnRate": 0.1})
    with pytest.raises(OptimizerError, match="metric"):
        PlateauSchedule(optimizer).step(None)
    assert schedule.t == 1 and optimizer.learnRate == 0.1
    growing = ExponentialSchedule(optimizer, 2.0)  # its rate past 2**1024 steps is no float: an OptimizerError
    state = {**growing.getAttrDict(), "t": 1100}
    with pytest.raises(OptimizerError, match="after 1100 steps"):
        growing.setAttrDict(state)
    growing.t = 1099
    with pytest.raises(OptimizerError, match="after 1100 steps"):
        growing.step()
    assert growing.t == 1099 and optimizer.learnRate == 0.1


def torchRates(makeScheduler, steps, metrics=None):
    torch = importTorch()
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    scheduler = makeScheduler(torch.optim.lr_scheduler, optimizer)
    values = [optimizer.param_groups[0]["lr"]]
    for t in range(steps):
        optimizer.step()
        scheduler.step(*([] if metrics is None else [metrics[t]]))
        values.append(optimizer.param_groups[0]["lr"])
    return values if metrics is None else values[1:]


@pytest.mark.parametrize("name", ["step", "multistep", "exponential", "cosine", "warmup", "onecycle", "plateau"])
def test_against_torch_itself(name):
    cosineWarm = lambda t: t / 5 if t < 5 else (0.01 + 0.09 * (1 + math.cos(math.pi * (t - 5) / 25)) / 2) / 0.1  # noqa: E731
    cases = {
        "step": (lambda s, o: s.StepLR(o, 7, 0.5), lambda o: StepSchedule(o, 7, 0.5)),
        "multistep": (lambda s, o: s.MultiStepLR(o, [3, 10, 10, 25], 0.3),
                      lambda o: MultiStepSchedule(o, [3, 10, 10, 25], 0.3)),
        "exponential": (lambda s, o: s.ExponentialLR(o, 0.9), lambda o: ExponentialSchedule(o, 0.9)),
        "cosine": (lambda s, o: s.CosineAnnealingLR(o, 15, 0.01), lambda o: CosineSchedule(o, 15, 0.01)),
        "warmup": (lambda s, o: s.LambdaLR(o, cosineWarm), lambda o: CosineSchedule(o, 30, 0.01, warmup=5)),
        "onecycle": (lambda s, o: s.OneCycleLR(o, 0.5, total_steps=STEPS, cycle_momentum=False),
                     lambda o: OneCycleSchedule(o, 0.5, STEPS)),
        "plateau": (lambda s, o: s.ReduceLROnPlateau(o, factor=0.5, patience=2, threshold=0.01),
                    lambda o: PlateauSchedule(o, factor=0.5, patience=2, threshold=0.01)),
    }
    makeTorch, makeOurs = cases[name]
    if name == "plateau":
        expected = torchRates(makeTorch, len(METRICS), METRICS)
        schedule, actual = makeOurs(sgd(0.1)), []
        for metric in METRICS:
            schedule.step(metric)
            actual.append(schedule.learnRate)
    else:
        expected = torchRates(makeTorch, STEPS)
        actual = rates(makeOurs(sgd(0.1)))
    numpy.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-12)
