"""The fit loop: schedules and callbacks against hand-written loops, exact resume, and its logs read back."""

import csv
import json
import math

import numpy
import pytest

from minidl.backend import generator, seed, toDevice
from minidl.cost import CrossEntropy
from minidl.errors import CallbackError, CheckpointError, DataError, OptimizerError
from minidl.optim import SGD, AdaGrad
from minidl.optim.schedules import CosineSchedule, PlateauSchedule, StepSchedule
from minidl.train import (
    BestCheckpoint,
    Callback,
    CsvLog,
    EarlyStopping,
    JsonLinesLog,
    PeriodicCheckpoint,
    TensorBoardLog,
    Trainer,
    loadCheckpoint,
)
from tests.train.nets import BLOBS, assertSameParams, classifier, hostParams

DATA, LABELS = BLOBS.trainData[:160], BLOBS.trainLabels[:160]
VALIDATION = (BLOBS.valData[:60], BLOBS.valLabels[:60])
TIMES = ("seconds", "samplesPerSecond")


def setup(learnRate=0.1, optimizer=SGD):
    seed(5)
    net = classifier()
    optimizer = optimizer(learnRate=learnRate).setupOn(net, useGlobalState=True)
    return net, optimizer, Trainer(net, CrossEntropy(), optimizer, batchsize=16, verbose=False)


def withoutTimes(history):
    return [{key: value for key, value in entry.items() if key not in TIMES} for entry in history]


class ParamsEachEpoch(Callback):
    def __init__(self):
        self.params = []

    def onEpochEnd(self, fit, entry):
        self.params.append(hostParams(fit.trainer.module))


def test_a_per_step_cosine_schedule_is_the_hand_loop_with_the_formula_rate():
    stepsPerEpoch, epochs, total, warmup = 10, 3, 30, 4

    def formula(t):
        if t < warmup:
            return 0.2 * t / warmup
        return 0.01 + (0.2 - 0.01) * (1 + math.cos(math.pi * (t - warmup) / (total - warmup))) / 2

    net, optimizer, trainer = setup(0.2)
    for epoch in range(epochs):
        order = generator().permutation(len(DATA))
        for step in range(stepsPerEpoch):
            optimizer.learnRate = formula(epoch * stepsPerEpoch + step)
            rows = order[16 * step:16 * step + 16]
            trainer.step(toDevice(DATA[rows]), toDevice(LABELS[rows]))
    expected = hostParams(net)

    net, optimizer, trainer = setup(0.2)
    schedule = CosineSchedule(optimizer, total, minLearnRate=0.01, warmup=warmup)
    history = trainer.fit(DATA, LABELS, epochs, VALIDATION, schedule=schedule, scheduleEvery="step")
    assertSameParams(hostParams(net), expected)
    assert [entry["learnRate"] for entry in history] == pytest.approx([formula(0), formula(10), formula(20)])
    assert optimizer.learnRate == pytest.approx(0.01)
    assert history[-1]["valAccuracy"] > 0.8 and history[-1]["trainError"] < history[0]["trainError"]


def test_early_stopping_ends_the_run_after_patience_epochs_without_improvement():
    net, optimizer, trainer = setup(0.0)  # nothing changes: the first epoch is the best one
    stopper = EarlyStopping(patience=3)
    history = trainer.fit(DATA, LABELS, 20, VALIDATION, callbacks=[stopper])
    assert len(history) == 4 and stopper.wait == 3 and stopper.best == history[0]["valError"]

    net, optimizer, trainer = setup(0.1)  # learning, but no accuracy can beat the first by minDelta = 2
    history = trainer.fit(DATA, LABELS, 3, VALIDATION, callbacks=[EarlyStopping("valAccuracy", "max", patience=1,
                                                                                 minDelta=2.0)])
    assert len(history) == 2 and history[1]["valAccuracy"] > history[0]["valAccuracy"]


def test_early_stopping_with_patience_0_stops_at_the_first_epoch_without_improvement():
    # as Keras's and Lightning's: an epoch that improves never stops the run, whatever the patience
    net, optimizer, trainer = setup(0.1)
    errors = [entry["valError"] for entry in trainer.fit(DATA, LABELS, 6, VALIDATION)]
    firstWorse = next((epoch for epoch in range(1, 6) if errors[epoch] >= min(errors[:epoch])), 5)
    assert firstWorse > 0  # the run learns: its second epoch improves on the first
    net, optimizer, trainer = setup(0.1)
    history = trainer.fit(DATA, LABELS, 6, VALIDATION, callbacks=[EarlyStopping(patience=0)])
    assert [entry["valError"] for entry in history] == errors[:firstWorse + 1]


def test_the_best_checkpoint_holds_the_best_epochs_network(tmp_path):
    net, optimizer, trainer = setup(0.5, AdaGrad)
    recorder = ParamsEachEpoch()
    path = tmp_path / "best.safetensors"
    history = trainer.fit(DATA, LABELS, 5, VALIDATION, callbacks=[BestCheckpoint(path, "valError"), recorder])
    bestEpoch = min(range(5), key=lambda index: history[index]["valError"]) + 1
    net2, optimizer2, _ = setup(0.5, AdaGrad)
    checkpoint = loadCheckpoint(path, net2, optimizer2)
    assert checkpoint.epoch == bestEpoch
    assertSameParams(hostParams(net2), recorder.params[bestEpoch - 1])


def fitRun(tmp_path, epochs, resume=False):
    net, optimizer, trainer = setup(0.3, AdaGrad)
    schedule = PlateauSchedule(optimizer, factor=0.5, patience=0, threshold=0.05)
    callbacks = [
        PeriodicCheckpoint(tmp_path / "run.safetensors"), EarlyStopping(patience=3),
        BestCheckpoint(tmp_path / "best.safetensors"), CsvLog(tmp_path / "log.csv"),
        JsonLinesLog(tmp_path / "log.jsonl"),
    ]
    history = trainer.fit(DATA, LABELS, epochs, VALIDATION, schedule=schedule, callbacks=callbacks,
                          resume=tmp_path / "run.safetensors" if resume else None)
    return net, schedule, callbacks, history


def test_resuming_a_fit_run_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    net, schedule, callbacks, history = fitRun(tmp_path / "a", 6)
    expectedRandom = generator().random()
    fitRun(tmp_path / "b", 3)
    net2, schedule2, callbacks2, history2 = fitRun(tmp_path / "b", 6, resume=True)
    assert generator().random() == expectedRandom
    assertSameParams(hostParams(net2), hostParams(net))
    assert withoutTimes(history2) == withoutTimes(history) and len(history) == 6
    assert schedule2.getAttrDict() == schedule.getAttrDict() and len({e["learnRate"] for e in history}) > 1
    assert [c.getAttrDict() for c in callbacks2] == [c.getAttrDict() for c in callbacks]
    for name in ("log.csv", "log.jsonl"):
        rows = [line.split(",")[:3] for line in (tmp_path / "b" / name).read_text().splitlines()]
        assert rows == [line.split(",")[:3] for line in (tmp_path / "a" / name).read_text().splitlines()]


def test_the_logs_hold_every_epoch(tmp_path):
    net, optimizer, trainer = setup(0.1)
    history = trainer.fit(DATA, LABELS, 3, VALIDATION, schedule=StepSchedule(optimizer, 1, 0.5), topK=(2,),
                          callbacks=[CsvLog(tmp_path / "log.csv"), JsonLinesLog(tmp_path / "log.jsonl"),
                                     TensorBoardLog(tmp_path / "tb")])
    names = ["epoch", "trainError", "valError", "valAccuracy", "valTop2", "learnRate", "seconds", "samplesPerSecond"]
    assert list(history[0]) == names
    with open(tmp_path / "log.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [{key: float(value) for key, value in row.items()} for row in rows] == history
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == history
    assert [entry["learnRate"] for entry in history] == [0.1, 0.05, 0.025]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert sorted(events.Tags()["scalars"]) == sorted(names[1:])
    for name in names[1:]:
        scalars = events.Scalars(name)
        assert [s.step for s in scalars] == [1, 2, 3]
        numpy.testing.assert_allclose([s.value for s in scalars], [e[name] for e in history], rtol=1e-6)


def test_bad_settings_raise_before_the_first_step(tmp_path):
    net, optimizer, trainer = setup(0.1)
    otherOptimizer = SGD().setupOn(classifier())
    before = hostParams(net)
    state = generator().bit_generator.state
    with pytest.raises(CallbackError, match="valAccuracy"):
        trainer.fit(DATA, LABELS, 2, callbacks=[EarlyStopping("valAccuracy")])
    with pytest.raises(CallbackError, match="no folder"):
        trainer.fit(DATA, LABELS, 2, VALIDATION, callbacks=[CsvLog(tmp_path / "missing" / "log.csv")])
    with pytest.raises(OptimizerError, match="scheduleEvery"):
        trainer.fit(DATA, LABELS, 2, VALIDATION, schedule=PlateauSchedule(optimizer), scheduleEvery="step")
    with pytest.raises(OptimizerError, match="scheduleMetric"):
        trainer.fit(DATA, LABELS, 2, schedule=PlateauSchedule(optimizer))
    with pytest.raises(OptimizerError, match="wrong way .higher is better.: pass mode='max'"):
        trainer.fit(DATA, LABELS, 2, VALIDATION, schedule=PlateauSchedule(optimizer), scheduleMetric="valAccuracy")
    with pytest.raises(OptimizerError, match="wrong way .lower is better.: pass mode='min'"):
        trainer.fit(DATA, LABELS, 2, VALIDATION, schedule=PlateauSchedule(optimizer, mode="max"))
    with pytest.raises(DataError, match="tuple"):
        trainer.fit(DATA, LABELS, 2, validation=[BLOBS.valData, BLOBS.valLabels])
    with pytest.raises(CallbackError, match="Callback objects"):
        trainer.fit(DATA, LABELS, 2, callbacks=[print])
    with pytest.raises(OptimizerError, match="another optimizer"):
        trainer.fit(DATA, LABELS, 2, schedule=StepSchedule(otherOptimizer, 2))
    assertSameParams(hostParams(net), before)
    assert generator().bit_generator.state == state
    trainer.fit(DATA, LABELS, 1, callbacks=[PeriodicCheckpoint(tmp_path / "run.safetensors")])
    after = hostParams(net)
    with pytest.raises(CheckpointError, match="callbacks"):
        trainer.fit(DATA, LABELS, 2, callbacks=[EarlyStopping("trainError")], resume=tmp_path / "run.safetensors")
    with pytest.raises(CheckpointError, match="without a schedule"):
        trainer.fit(DATA, LABELS, 2, schedule=StepSchedule(optimizer, 2),
                    callbacks=[PeriodicCheckpoint(tmp_path / "run.safetensors")], resume=tmp_path / "run.safetensors")
    assertSameParams(hostParams(net), after)


@pytest.mark.parametrize("bad", ["training", "validation"])
def test_bad_data_is_refused_before_the_run_touches_a_file_or_a_parameter(tmp_path, bad):
    # the run's callbacks start by rewriting its log and removing the kept checkpoints of a run it replaces: data
    # that cannot be trained on (a NaN row here) must be refused before that, and before the first epoch trains
    (tmp_path / "kept").mkdir()

    def callbacks():
        return [CsvLog(tmp_path / "log.csv"), PeriodicCheckpoint(tmp_path / "run.safetensors", keep=tmp_path / "kept")]

    setup(0.1)[2].fit(DATA, LABELS, 2, VALIDATION, callbacks=callbacks())
    files = {path: path.read_bytes() for path in sorted(tmp_path.rglob("*")) if path.is_file()}
    assert len(files) == 5  # the log, the checkpoint and the three kept: steps 0, 10 and 20
    data, validation = DATA.copy(), (VALIDATION[0].copy(), VALIDATION[1])
    (data if bad == "training" else validation[0])[7, 1] = numpy.nan
    net, optimizer, trainer = setup(0.1)
    before, state = hostParams(net), generator().bit_generator.state
    with pytest.raises(DataError, match="row 7 holds NaN"):
        trainer.fit(data, LABELS, 2, validation, callbacks=callbacks())
    assert {path: path.read_bytes() for path in sorted(tmp_path.rglob("*")) if path.is_file()} == files
    assertSameParams(hostParams(net), before)
    assert generator().bit_generator.state == state


class FailAt(Callback):
    """Ends the run with an error after the callbacks before it have seen epoch ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def onEpochEnd(self, fit, entry):
        if fit.epoch == self.epoch:
            raise RuntimeError("interrupted")

    def __repr__(self):
        return "FailAt"


def test_a_resumed_tensorboard_log_replaces_the_epochs_after_the_checkpoint(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def callbacks(failAt):
        return [TensorBoardLog(tmp_path / "tb"), FailAt(failAt), PeriodicCheckpoint(tmp_path / "run.safetensors")]

    net, optimizer, trainer = setup(0.1)
    with pytest.raises(RuntimeError, match="interrupted"):
        trainer.fit(DATA, LABELS, 4, callbacks=callbacks(3))  # epoch 3 is logged, but the checkpoint holds 2
    net, optimizer, trainer = setup(0.1)
    history = trainer.fit(DATA, LABELS, 4, callbacks=callbacks(0), resume=tmp_path / "run.safetensors")
    scalars = EventAccumulator(str(tmp_path / "tb")).Reload().Scalars("trainError")
    assert [s.step for s in scalars] == [1, 2, 3, 4]
    numpy.testing.assert_allclose([s.value for s in scalars[2:]], [e["trainError"] for e in history[2:]], rtol=1e-6)
