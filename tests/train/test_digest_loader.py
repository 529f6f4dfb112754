"""Digests every step of a run on an ImageLoader: one line per step and per epoch end, equal across runs with one
seed, and a run resumed from a mid-epoch checkpoint logs the uninterrupted run's lines."""

import pytest

pytest.importorskip("PIL")

import numpy  # noqa: E402

from minidl.backend import toHost  # noqa: E402
from minidl.optim.hooks import Hook  # noqa: E402
from minidl.train import Digests, PeriodicCheckpoint, Trainer, readDigests  # noqa: E402
from tests.train.test_fit_loader import StopAt, setUp  # noqa: E402


def run(tmp_path, folder, stopAt=(0, 0), resume=False):
    train, val, trainer, schedule = setUp(tmp_path / "tree")
    folder.mkdir(exist_ok=True)
    path = folder / "last.safetensors"
    callbacks = [StopAt(*stopAt), Digests(folder / "digests.jsonl", everySteps=1), PeriodicCheckpoint(path,
                                                                                                        everySteps=1)]
    trainer.fit(train, None, 3, validation=val, schedule=schedule, scheduleEvery="step", callbacks=callbacks,
                resume=path if resume else None)
    return readDigests(folder / "digests.jsonl")


def test_per_step_digests_repeat_and_resume_mid_epoch(tmp_path):
    whole = run(tmp_path, tmp_path / "a")
    steps = [line["step"] for line in whole]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 6
    assert len({line["digests"]["float32"] for line in whole}) == len(whole)
    assert run(tmp_path, tmp_path / "b") == whole
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, tmp_path / "c", stopAt=(2, 3))
    assert len(readDigests(tmp_path / "c" / "digests.jsonl")) < len(whole)
    assert run(tmp_path, tmp_path / "c", resume=True) == whole


class PoisonBatch(Hook):
    """Writes NaN into a gradient at the step on the batch whose values sum to ``target`` (the same step in every
    run of the data, resumed or not); records every batch's sum."""

    def __init__(self, module, target=None):
        self.module, self.target, self.sums = module, target, []

    def __call__(self, groups):
        total = float(toHost(self.module.inData).astype(numpy.float64).sum())
        self.sums.append(total)
        if total == self.target:
            groups[0].grad[0] = numpy.nan


def skippingRun(tmp_path, folder, everySteps, target=None, stopAt=(0, 0), resume=False):
    train, val, trainer, schedule = setUp(tmp_path / "tree")
    trainer = Trainer(trainer.module, trainer.cost, trainer.optimizer, batchsize=4, verbose=False, capture=False)
    trainer.optimizer.nonFinite = "skip"
    poison = PoisonBatch(trainer.module, target)
    trainer.optimizer.addHook(poison)
    folder.mkdir(exist_ok=True)
    path = folder / "last.safetensors"
    callbacks = [StopAt(*stopAt), Digests(folder / "digests.jsonl", everySteps=everySteps),
                 PeriodicCheckpoint(path, everySteps=2)]
    trainer.fit(train, None, 3, validation=val, schedule=schedule, scheduleEvery="step", callbacks=callbacks,
                macroBatchSize=12, resume=path if resume else None)  # the guard read every 3 steps
    return readDigests(folder / "digests.jsonl"), poison.sums, trainer.optimizer


@pytest.mark.parametrize("everySteps", [1, 2])
def test_a_skipped_step_is_logged_at_the_true_step_and_a_resumed_run_logs_the_same_lines(tmp_path, everySteps):
    # a step the guard skipped counts in the host's t until the guard is read: a line labelled by it took the
    # step number of the next one (the same step logged twice with two digests), and a run resumed mid-epoch,
    # whose guard reads fell elsewhere, logged other steps than the uninterrupted run
    _, sums, _ = skippingRun(tmp_path, tmp_path / "probe", 1)
    whole, _, optimizer = skippingRun(tmp_path, tmp_path / "a", everySteps, target=sums[6])
    assert optimizer.skippedSteps == 1
    steps = [line["step"] for line in whole]
    assert steps == sorted(set(steps)) and steps[-1] == optimizer.t
    assert len({line["digests"]["float32"] for line in whole}) == len(whole)  # every line a step of its own
    if everySteps == 1:
        assert steps == list(range(1, optimizer.t + 1))
    with pytest.raises(KeyboardInterrupt):
        skippingRun(tmp_path, tmp_path / "b", everySteps, target=sums[6], stopAt=(2, 3))
    assert skippingRun(tmp_path, tmp_path / "b", everySteps, target=sums[6], resume=True)[0] == whole
