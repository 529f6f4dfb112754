"""Callbacks watch a metric the way it improves: errors down, accuracies up, anything else only with a mode."""

import pytest

from minidl.errors import CallbackError
from minidl.train import BestCheckpoint, EarlyStopping, loadCheckpoint
from tests.train.nets import assertSameParams, hostParams
from tests.train.test_fit import DATA, LABELS, VALIDATION, ParamsEachEpoch, setup


@pytest.mark.parametrize("metric, mode", [("valError", "min"), ("trainError", "min"), ("valAccuracy", "max"),
                                          ("valTop3", "max")])
def test_the_mode_is_inferred_from_the_metric_and_said(metric, mode, tmp_path):
    for callback in (EarlyStopping(metric), BestCheckpoint(tmp_path / "best.safetensors", metric)):
        assert callback.mode == mode
        assert f"watching {metric} ({mode}: {'lower' if mode == 'min' else 'higher'} is better)" in str(callback)


def test_an_unknown_metric_needs_a_mode():
    with pytest.raises(CallbackError, match="which way 'valF1' improves.*mode='max'"):
        EarlyStopping("valF1")
    assert EarlyStopping("valF1", mode="max").mode == "max"
    with pytest.raises(CallbackError, match="mode must be one of"):
        EarlyStopping("valError", mode="up")


def test_the_best_checkpoint_of_val_accuracy_keeps_the_most_accurate_epoch(tmp_path):
    net, optimizer, trainer = setup(0.1)
    recorder = ParamsEachEpoch()
    path = tmp_path / "best.safetensors"
    history = trainer.fit(DATA, LABELS, 4, VALIDATION, callbacks=[BestCheckpoint(path, "valAccuracy"), recorder])
    accuracies = [entry["valAccuracy"] for entry in history]
    best = max(range(4), key=lambda index: (accuracies[index], -index))
    assert accuracies[best] > min(accuracies)  # the run learns: the worst epoch is another one
    net2, optimizer2, _ = setup(0.1)
    assert loadCheckpoint(path, net2, optimizer2).epoch == best + 1
    assertSameParams(hostParams(net2), recorder.params[best])


def test_early_stopping_on_val_accuracy_does_not_stop_while_it_rises():
    net, optimizer, trainer = setup(0.1)
    history = trainer.fit(DATA, LABELS, 4, VALIDATION, callbacks=[EarlyStopping("valAccuracy", patience=1)])
    accuracies = [entry["valAccuracy"] for entry in history]
    stoppedEarly = len(history) < 4
    assert not stoppedEarly or accuracies[-1] <= max(accuracies[:-1])

