"""Digests every step of a run on an ImageLoader: one line per step and per epoch end, equal across runs with one
seed, and a run resumed from a mid-epoch checkpoint logs the uninterrupted run's lines."""

import pytest

pytest.importorskip("PIL")

from minidl.train import Digests, PeriodicCheckpoint, readDigests  # noqa: E402
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
