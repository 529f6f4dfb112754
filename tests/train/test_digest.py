"""Parameter digests: the fold against a plain-Python oracle on every path, equal runs give equal digests, one
changed bit changes them, and a resumed run's digest log is the uninterrupted run's."""

import numpy
import pytest

from minidl.backend import toDevice, toHost, xp
from minidl.errors import CallbackError, OptimizerError
from minidl.optim import AdaGrad
from minidl.train import Digests, PeriodicCheckpoint, parameterDigests, readDigests
from minidl.train.digest import LANES, MULTIPLIER, digestKer
from tests.train.test_fit import DATA, LABELS, FailAt, setup

MASK = (1 << 64) - 1


def oracleLanes(words, lanes):
    """The fold in Python integers, one word at a time."""
    state = [0] * lanes
    for index, word in enumerate(int(w) for w in words):
        h = state[index % lanes] ^ word
        h = (h * MULTIPLIER) & MASK
        state[index % lanes] = h ^ (h >> 29)
    return state


@pytest.mark.parametrize("wordType", [numpy.uint16, numpy.uint32, numpy.uint64])
@pytest.mark.parametrize("count", [1, 7, LANES, LANES + 3, 3 * LANES - 1])
def test_every_path_folds_as_the_python_oracle(wordType, count):
    words = numpy.random.default_rng(count).integers(0, numpy.iinfo(wordType).max, size=count, dtype=wordType,
                                                     endpoint=True)
    expected = oracleLanes(words, LANES)
    lanes = xp.zeros(LANES, dtype=numpy.uint64)
    digestKer(toDevice(words), count, LANES, lanes, size=LANES)
    assert toHost(lanes).tolist() == expected
    for call in (digestKer.callNumpy, digestKer.callCompiled):
        host = numpy.zeros(LANES, dtype=numpy.uint64)
        call(words, count, LANES, host, size=LANES)
        assert host.tolist() == expected


def test_the_same_parameters_give_the_same_digest_and_one_flipped_bit_another():
    net, optimizer, trainer = setup(0.1, AdaGrad)
    trainer.trainFromHost(DATA, LABELS, 10000)
    first = parameterDigests(optimizer)
    assert parameterDigests(optimizer) == first and set(first) == {"float32"}
    group = optimizer.groups[0]
    original = toHost(group.param).copy()
    flipped = original.copy()
    flipped.view(numpy.uint32)[original.size // 2] ^= 1
    group.param[...] = toDevice(flipped)
    assert parameterDigests(optimizer) != first
    group.param[...] = toDevice(original)
    assert parameterDigests(optimizer) == first
    group.state["h"][-1:] = group.state["h"][-1:] * 2
    assert parameterDigests(optimizer) != first


def test_digests_need_an_optimizer_set_up():
    with pytest.raises(OptimizerError, match="setupOn"):
        parameterDigests(AdaGrad(learnRate=0.1))


def digestRun(path, epochs, resume=None, failAt=None, learnRate=0.3):
    net, optimizer, trainer = setup(learnRate, AdaGrad)
    callbacks = [Digests(path / "digests.jsonl"), PeriodicCheckpoint(path / "run.safetensors")]
    if failAt is not None:
        callbacks.insert(1, FailAt(failAt))
    trainer.fit(DATA, LABELS, epochs, callbacks=callbacks, resume=resume)
    return readDigests(path / "digests.jsonl")


def test_two_runs_with_one_seed_log_the_same_digests_and_a_resumed_run_the_uninterrupted_ones(tmp_path):
    for name in "abcd":
        (tmp_path / name).mkdir()
    whole = digestRun(tmp_path / "a", 4)
    assert [line["step"] for line in whole] == [10, 20, 30, 40] and [line["epoch"] for line in whole] == [1, 2, 3, 4]
    assert len({line["digests"]["float32"] for line in whole}) == 4
    assert digestRun(tmp_path / "b", 4) == whole
    with pytest.raises(RuntimeError, match="interrupted"):
        digestRun(tmp_path / "c", 4, failAt=3)  # epoch 3's digest is logged, but the checkpoint holds epoch 2
    assert len(readDigests(tmp_path / "c" / "digests.jsonl")) == 3
    assert digestRun(tmp_path / "c", 4, resume=tmp_path / "c" / "run.safetensors", failAt=0) == whole
    other = digestRun(tmp_path / "d", 4, learnRate=0.31)
    assert all(line["digests"] != mine["digests"] for line, mine in zip(other, whole))


def test_digests_inside_an_epoch_need_a_loader_and_bad_settings_raise(tmp_path):
    net, optimizer, trainer = setup(0.1)
    with pytest.raises(CallbackError, match="ImageLoader"):
        trainer.fit(DATA, LABELS, 1, callbacks=[Digests(tmp_path / "d.jsonl", everySteps=1)])
    with pytest.raises(CallbackError, match="every"):
        Digests(tmp_path / "d.jsonl", every=0)
    with pytest.raises(CallbackError, match="folder"):
        trainer.fit(DATA, LABELS, 1, callbacks=[Digests(tmp_path / "none" / "d.jsonl")])
    assert not (tmp_path / "d.jsonl").exists()
