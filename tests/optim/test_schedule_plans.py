"""A restored schedule keeps its plan: a state saved by a schedule of another horizon (total steps, warmup, step
size, gamma...) is refused, naming the difference, and a fit run resumed with such a schedule changes nothing."""

import pytest

from minidl.errors import CheckpointError, OptimizerError
from minidl.nn import Linear
from minidl.optim import SGD
from minidl.optim.schedules import (
    CosineSchedule,
    ExponentialSchedule,
    MultiStepSchedule,
    OneCycleSchedule,
    StepSchedule,
)
from minidl.train import PeriodicCheckpoint
from tests.train.nets import assertSameParams, hostParams
from tests.train.test_fit import DATA, LABELS, setup


def sgd():
    return SGD(learnRate=0.1).setupOn(Linear(2, 2))


@pytest.mark.parametrize("make, other, entry", [
    (lambda o: CosineSchedule(o, 30), lambda o: CosineSchedule(o, 40), "total=30"),
    (lambda o: CosineSchedule(o, 30, warmup=5), lambda o: CosineSchedule(o, 30), "warmup=5"),
    (lambda o: OneCycleSchedule(o, 0.5, 30), lambda o: OneCycleSchedule(o, 0.5, 40), "total=30"),
    (lambda o: StepSchedule(o, 3), lambda o: StepSchedule(o, 4), "stepSize=3"),
    (lambda o: MultiStepSchedule(o, [2, 5]), lambda o: MultiStepSchedule(o, [2, 6]), r"milestones=\[2, 5\]"),
    (lambda o: ExponentialSchedule(o, 0.9), lambda o: ExponentialSchedule(o, 0.8), "gamma=0.9"),
])
def test_a_state_of_another_plan_is_refused(make, other, entry):
    saved = make(sgd())
    for _ in range(3):
        saved.step()
    state = saved.getAttrDict()
    optimizer = sgd()
    resumed = other(optimizer)
    rate = optimizer.learnRate
    with pytest.raises(OptimizerError, match=f"state was planned with {entry}, this schedule has .*keeps its plan"):
        resumed.setAttrDict(state)
    assert resumed.t == 0 and optimizer.learnRate == rate
    same = make(sgd())
    same.setAttrDict(state)
    assert same.learnRate == saved.learnRate


def test_a_fit_run_resumed_with_a_longer_cosine_is_refused(tmp_path):
    net, optimizer, trainer = setup(0.2)
    path = tmp_path / "run.safetensors"
    trainer.fit(DATA, LABELS, 2, schedule=CosineSchedule(optimizer, 20), scheduleEvery="step",
                callbacks=[PeriodicCheckpoint(path)], verbose=False)
    net, optimizer, trainer = setup(0.2)
    before = hostParams(net)
    with pytest.raises(CheckpointError, match="total=20, this schedule has total=30"):
        trainer.fit(DATA, LABELS, 3, schedule=CosineSchedule(optimizer, 30), scheduleEvery="step",
                    callbacks=[PeriodicCheckpoint(path)], resume=path, verbose=False)
    assertSameParams(hostParams(net), before)
