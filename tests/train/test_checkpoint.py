"""saveCheckpoint/loadCheckpoint: an interrupted-and-resumed run equals a straight one, writes are atomic,
files are readable by any safetensors reader, and a file that does not fit changes nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from minidl import Variable
from minidl.backend import generator, getRandomState, name, seed, toHost, xp
from minidl.cost import CrossEntropy
from minidl.errors import CheckpointError
from minidl.nn import Linear, Sequential
from minidl.optim import SGD, AdaGrad
from minidl.tensorfile import readTensors, writeTensors
from minidl.train import Trainer, loadCheckpoint, saveCheckpoint
from tests.optional import importSafetensorsTorch
from tests.safetensorsreader import readSafetensors
from tests.train.nets import BLOBS, assertSameParams, classifier, hostParams


def setup(useGlobalState=True):
    net = classifier()
    optimizer = AdaGrad(learnRate=0.05).setupOn(net, useGlobalState=useGlobalState)
    return net, optimizer, Trainer(net, CrossEntropy(), optimizer, batchsize=32, verbose=False)


def epochs(trainer, count):
    for _ in range(count):
        trainer.trainFromHost(BLOBS.trainData, BLOBS.trainLabels)


def hostState(optimizer):
    return {key: toHost(array).copy() for key, array in optimizer.getStateTable().items()}


def test_two_epochs_then_a_resume_equal_four_epochs_straight(tmp_path):
    seed(0)
    net, optimizer, trainer = setup()
    epochs(trainer, 4)

    seed(0)
    first, firstOptimizer, firstTrainer = setup()
    epochs(firstTrainer, 2)
    saveCheckpoint(tmp_path / "run.safetensors", first, firstOptimizer, epoch=2, extra={"note": [1, 2]})

    seed(123)  # a fresh process would start elsewhere: another network, another random state
    resumed, resumedOptimizer, resumedTrainer = setup(useGlobalState=False)
    checkpoint = loadCheckpoint(tmp_path / "run.safetensors", resumed, resumedOptimizer)
    assert (checkpoint.epoch, checkpoint.extra) == (2, {"note": [1, 2]})
    epochs(resumedTrainer, 2)
    assertSameParams(hostParams(resumed), hostParams(net))
    assertSameParams(hostState(resumedOptimizer), hostState(optimizer))


def test_the_file_holds_the_documented_names_for_any_safetensors_reader(tmp_path):
    seed(1)
    net, optimizer, trainer = setup()
    epochs(trainer, 1)
    saveCheckpoint(tmp_path / "run.safetensors", net, optimizer, epoch=1)
    tensors, metadata = readSafetensors(tmp_path / "run.safetensors")
    variables = ("0.W", "0.b", "2.W", "2.b")
    assert sorted(tensors) == sorted([f"module.{v}" for v in variables] + [f"optimizer.{v}.h" for v in variables])
    numpy.testing.assert_array_equal(tensors["module.2.W"], toHost(net[2].W))
    numpy.testing.assert_array_equal(tensors["optimizer.0.b.h"], toHost(optimizer.getStateTable()["0.b.h"]))
    assert metadata["format"] == "minidl.checkpoint" and metadata["epoch"] == "1"
    assert metadata["optimizer"] == "AdaGrad" and json.loads(metadata["attrs"])["learnRate"] == 0.05
    assert json.loads(metadata["random"]) == getRandomState() and json.loads(metadata["extra"]) is None


def test_pytorch_reads_it_when_installed(tmp_path):
    torchFile = importSafetensorsTorch()
    net, optimizer, _ = setup()
    saveCheckpoint(tmp_path / "run.safetensors", net, optimizer, epoch=0)
    tensors = torchFile.load_file(tmp_path / "run.safetensors")
    numpy.testing.assert_array_equal(tensors["module.0.W"].numpy(), toHost(net[0].W))


def test_an_interrupted_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.safetensors"
    seed(2)
    net, optimizer, trainer = setup()
    epochs(trainer, 1)
    saveCheckpoint(path, net, optimizer, epoch=1)
    saved, before = hostParams(net), path.read_bytes()
    epochs(trainer, 1)

    def crash(*args):
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(RuntimeError):
        saveCheckpoint(path, net, optimizer, epoch=2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    fresh, freshOptimizer, _ = setup()
    assert loadCheckpoint(path, fresh, freshOptimizer).epoch == 1
    assertSameParams(hostParams(fresh), saved)


def rewriteMetadata(path, **entries):
    """Change metadata entries of a checkpoint, keeping it whole (the checksum is recomputed over the new metadata)."""
    tensors, metadata = readTensors(path, "minidl.checkpoint")
    writeTensors(path, tensors, {**metadata, **entries})


@pytest.mark.parametrize("case", ["another network", "another optimizer", "damaged", "a module file", "missing",
                                  "a negative epoch", "a refused attribute", "a deep extra", "a huge attribute",
                                  "a huge epoch"])
def test_a_checkpoint_that_does_not_fit_changes_nothing(tmp_path, case):
    path = tmp_path / "run.safetensors"
    seed(3)
    rewrites = {"a negative epoch": {"epoch": "-1"}, "a deep extra": {"extra": "[" * 100_000 + "]" * 100_000},
                "a huge attribute": {"attrs": f'{{"learnRate": {10**400}, "epsilon": 1e-08, "t": 3}}'},
                "a huge epoch": {"epoch": str(10**400)}}
    if case in ("a refused attribute", *rewrites):  # its random state differs from the one at load
        other = classifier()
        saveCheckpoint(path, other, AdaGrad().setupOn(other), epoch=1)
        if case in rewrites:
            rewriteMetadata(path, **rewrites[case])
        else:  # refused by setAttrDict after the random state was set: that must be rolled back too
            rewriteMetadata(path, attrs='{"learnRate": -1.0, "epsilon": 1e-08, "t": 3, "skippedSteps": 0}')
    elif case == "another network":
        other = Sequential().append(Linear(6, 4))
        saveCheckpoint(path, other, AdaGrad().setupOn(other), epoch=1)
    elif case == "another optimizer":
        other = classifier()
        saveCheckpoint(path, other, SGD().setupOn(other), epoch=1)
    elif case == "a module file":
        classifier().save(path)
    elif case != "missing":
        other = classifier()
        saveCheckpoint(path, other, AdaGrad().setupOn(other), epoch=1)
        path.write_bytes(path.read_bytes()[:-7])
    net, optimizer, trainer = setup()
    epochs(trainer, 1)
    before = (hostParams(net), hostState(optimizer), optimizer.getAttrDict(), getRandomState())
    with pytest.raises(CheckpointError, match=str(path)):
        loadCheckpoint(path, net, optimizer)
    assertSameParams(hostParams(net), before[0])
    assertSameParams(hostState(optimizer), before[1])
    assert optimizer.getAttrDict() == before[2] and getRandomState() == before[3]


def test_a_scalar_variable_round_trips(tmp_path):
    """A 0-d Variable (a learned temperature) and its 0-d optimizer state keep their shape () in the file."""
    seed(5)
    net, optimizer, trainer = setup(useGlobalState=False)
    net[0].vars["T"] = Variable(xp.full((), 1.5, numpy.float32))
    optimizer.setupOn(net)
    net[0].vars["T"].grad[...] = 0.25
    optimizer.update()
    saveCheckpoint(tmp_path / "run.safetensors", net, optimizer, epoch=1)
    tensors, _ = readSafetensors(tmp_path / "run.safetensors")
    assert tensors["module.0.T"].shape == () and tensors["optimizer.0.T.h"].shape == ()

    fresh, freshOptimizer, _ = setup(useGlobalState=False)
    fresh[0].vars["T"] = Variable(xp.zeros((), numpy.float32))
    freshOptimizer.setupOn(fresh)
    loadCheckpoint(tmp_path / "run.safetensors", fresh, freshOptimizer)
    assertSameParams(hostParams(fresh), hostParams(net))
    assertSameParams(hostState(freshOptimizer), hostState(optimizer))


def test_a_bad_epoch_or_extra_is_refused_before_writing(tmp_path):
    net, optimizer, _ = setup()
    with pytest.raises(CheckpointError, match="epoch"):
        saveCheckpoint(tmp_path / "a.safetensors", net, optimizer, epoch=-1)
    with pytest.raises(CheckpointError, match="JSON"):
        saveCheckpoint(tmp_path / "a.safetensors", net, optimizer, epoch=1, extra={"f": object()})
    assert not os.listdir(tmp_path)


REPOSITORY = Path(__file__).resolve().parents[2]
ON_THE_CPU = """
import sys
import numpy
from minidl.backend import generator, seed
from minidl.optim import AdaGrad
from minidl.train import loadCheckpoint, saveCheckpoint
from tests.train.nets import assertSameParams, classifier, hostParams
seed(11)
net = classifier()
optimizer = AdaGrad().setupOn(net)
if sys.argv[1] == "write":
    generator().standard_normal(5)
    saveCheckpoint(sys.argv[2], net, optimizer, epoch=3)
else:
    expected = hostParams(net)
    seed(0)
    other = classifier()
    otherOptimizer = AdaGrad().setupOn(other)
    assert loadCheckpoint(sys.argv[2], other, otherOptimizer).epoch == 3
    assertSameParams(hostParams(other), expected)
    print("loaded on the CPU")
"""


def onTheCpu(*args):
    env = {**os.environ, "MINIDL_BACKEND": "numpy"}
    return subprocess.run([sys.executable, "-c", ON_THE_CPU, *map(str, args)], check=True, env=env,
                          capture_output=True, text=True, cwd=REPOSITORY).stdout


def test_checkpoints_move_between_the_cpu_backend_and_this_one(tmp_path):
    """Across devices on a machine with a GPU (this process runs cupy); across processes elsewhere."""
    onTheCpu("write", tmp_path / "cpu.safetensors")
    seed(11)
    expected = hostParams(classifier())
    generator().standard_normal(5)
    expectedDraw = generator().standard_normal(3)
    seed(0)
    net = classifier()
    optimizer = AdaGrad().setupOn(net, useGlobalState=True)
    assert loadCheckpoint(tmp_path / "cpu.safetensors", net, optimizer).epoch == 3, f"loaded on {name}"
    assertSameParams(hostParams(net), expected)
    numpy.testing.assert_array_equal(generator().standard_normal(3), expectedDraw)

    saveCheckpoint(tmp_path / "here.safetensors", net, optimizer, epoch=3)
    assert onTheCpu("check", tmp_path / "here.safetensors").strip() == "loaded on the CPU"


def test_a_checkpoint_loads_without_an_optimizer_for_predictions(tmp_path):
    seed(0)
    net, optimizer, trainer = setup()
    epochs(trainer, 1)
    saveCheckpoint(tmp_path / "run.safetensors", net, optimizer, epoch=1, extra={"note": 1})

    seed(5)
    fresh = classifier()
    randomBefore = getRandomState()
    checkpoint = loadCheckpoint(tmp_path / "run.safetensors", fresh)
    assert (checkpoint.epoch, checkpoint.extra) == (1, {"note": 1})
    assertSameParams(hostParams(fresh), hostParams(net))
    assert getRandomState() == randomBefore  # the file's random state is for resuming, not for predicting


def test_a_module_alone_that_does_not_fit_or_a_damaged_file_changes_nothing(tmp_path):
    seed(0)
    net, optimizer, _ = setup()
    path = tmp_path / "run.safetensors"
    saveCheckpoint(path, net, optimizer, epoch=0)
    wider = classifier(hidden=17)
    before = hostParams(wider)
    with pytest.raises(CheckpointError, match=r"tensor 'module.0.W' is float32 \(6, 16\), expected float32 \(6, 17\)"):
        loadCheckpoint(path, wider)
    assertSameParams(hostParams(wider), before)

    other = classifier()
    before = hostParams(other)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40  # a bit of the last optimizer tensor: not the module's, yet the file is damaged
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        loadCheckpoint(path, other)
    assertSameParams(hostParams(other), before)
