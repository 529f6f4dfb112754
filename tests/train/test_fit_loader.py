"""Fit on an ImageLoader: a mid-epoch checkpoint resumes to the uninterrupted run's parameters under a per-step
schedule, and what cannot be resumed is refused before anything changes."""

import pytest

pytest.importorskip("PIL")

from minidl.backend import seed  # noqa: E402
from minidl.cost import CrossEntropy  # noqa: E402
from minidl.datasets import ImageAugment, ImageDecoder, ImagePipeline, openSource, splitIndices  # noqa: E402
from minidl.errors import CallbackError, CheckpointError  # noqa: E402
from minidl.models import MODELS  # noqa: E402
from minidl.optim import MomentumSGD  # noqa: E402
from minidl.optim.schedules import CosineSchedule  # noqa: E402
from minidl.train import Callback, PeriodicCheckpoint, Trainer  # noqa: E402
from tests.datasets.imagetrees import writeTree  # noqa: E402
from tests.train.nets import BLOBS, assertSameParams, classifier, hostParams  # noqa: E402


class StopAt(Callback):
    """Raise KeyboardInterrupt after step ``position`` of epoch ``epoch`` (1-based), a checkpoint written."""

    def __init__(self, epoch, position):
        self.epoch, self.position = epoch, position

    def onStepEnd(self, fit):
        if fit.epoch + 1 == self.epoch and fit.position == self.position:
            raise KeyboardInterrupt


def setUp(root, counts=None):
    seed(0)
    source = openSource(f"folder:{writeTree(root, counts) if counts is not None or not root.exists() else root}")
    pipeline = ImagePipeline(source, ImageDecoder(8), 4, ImageAugment(scale=(0.5, 1.0), flip=True), seed=1)
    trainPart, valPart = splitIndices(len(source), 0.25, seed=1)
    net = MODELS["cnn"].build((3, 8, 8), len(source.classes))
    optimizer = MomentumSGD(learnRate=0.05).setupOn(net, useGlobalState=True)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=4, verbose=False)
    schedule = CosineSchedule(optimizer, total=3 * 4)
    return pipeline.loader(trainPart, True), pipeline.loader(valPart, False), trainer, schedule


def test_a_mid_epoch_checkpoint_resumes_to_the_uninterrupted_runs_parameters(tmp_path):
    train, val, trainer, schedule = setUp(tmp_path / "tree")
    whole = trainer.fit(train, None, 3, validation=val, schedule=schedule, scheduleEvery="step")
    expected = hostParams(trainer.module)
    train, val, trainer, schedule = setUp(tmp_path / "tree")
    path = tmp_path / "last.safetensors"
    callbacks = [StopAt(2, 3), PeriodicCheckpoint(path, everySteps=1)]
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(train, None, 3, validation=val, schedule=schedule, scheduleEvery="step", callbacks=callbacks)
    train, val, trainer, schedule = setUp(tmp_path / "tree")
    resumed = trainer.fit(train, None, 3, validation=val, schedule=schedule, scheduleEvery="step",
                          callbacks=[StopAt(0, 0), PeriodicCheckpoint(path, everySteps=1)], resume=path)
    assertSameParams(hostParams(trainer.module), expected)
    assert [entry["trainError"] for entry in resumed] == [entry["trainError"] for entry in whole]
    # the resumed epoch's entry holds the rate that epoch started with, not the rate where it was resumed
    assert [entry["learnRate"] for entry in resumed] == [entry["learnRate"] for entry in whole]


def test_a_loaders_checkpoint_is_refused_for_other_classes_or_host_arrays(tmp_path):
    train, val, trainer, _ = setUp(tmp_path / "tree")
    path = tmp_path / "last.safetensors"
    trainer.fit(train, None, 1, callbacks=[PeriodicCheckpoint(path)])
    train, _, trainer, _ = setUp(tmp_path / "other", {"cat": 4, "owl": 4})
    before = hostParams(trainer.module)
    with pytest.raises(CheckpointError, match=r"classes \['cat', 'dog', 'owl'\], not \['cat', 'owl'\]"):
        trainer.fit(train, None, 2, callbacks=[PeriodicCheckpoint(path)], resume=path)
    assertSameParams(hostParams(trainer.module), before)
    net = classifier()
    blobs = Trainer(net, CrossEntropy(), MomentumSGD(learnRate=0.1).setupOn(net, useGlobalState=True), verbose=False)
    with pytest.raises(CheckpointError, match="written by a run on an image loader"):
        blobs.fit(BLOBS.trainData, BLOBS.trainLabels, 2, callbacks=[PeriodicCheckpoint(path)], resume=path)
    with pytest.raises(CallbackError, match="inside an epoch need a run on an ImageLoader"):
        blobs.fit(BLOBS.trainData, BLOBS.trainLabels, 1, callbacks=[PeriodicCheckpoint(path, everySteps=2)])


def test_a_loaders_epoch_reads_the_device_once_per_macro_batch_not_per_step(tmp_path):
    """The labels are read once before the first step; the steps' checks and the guard after each macro-batch's steps
    and at the end of the epoch, then the mean error once: no sync inside a step (counted on the simulated device).
    The captured step's check of a batch shape (once per shape: an ordinary step and a replay compared) reads the
    device three times: the arrays' differing bytes and the two errors."""
    from minidl import backend

    if not backend.isGpu:
        pytest.skip("syncs are counted on the simulated device (MINIDL_BACKEND=simulated, CI's second run)")
    from minidl.backend.simulated import trace

    train, _, trainer, _ = setUp(tmp_path / "tree")
    trainer.trainFromLoader(train, 0)
    steps = -(-len(train) // trainer.batchsize)
    assert steps >= 3
    for macroBatchSize, reads in ((10000, 1), (trainer.batchsize, steps), (2 * trainer.batchsize, -(-steps // 2))):
        with trace.recording() as recorded:
            trainer.trainFromLoader(train, 1, macroBatchSize=macroBatchSize)
        where = [event.where.split(":")[0] for event in recorded.syncs]
        checks = where.count("minidl/train/capturedstep.py")
        assert checks in (0, 3, 6), where  # the last partial batch's shape may be checked in this epoch
        where = [place for place in where if place != "minidl/train/capturedstep.py"]
        assert where.count("minidl/optim/guard.py") == reads, (macroBatchSize, where)
        assert where[0] == "minidl/train/datacheck.py", where  # the loader's labels, checked before the first step
        assert where.count("minidl/cost/cost.py") == 1 and len(where) == 2 * reads + 2, (macroBatchSize, where)
