"""Fault injection on checkpoints: kill -9 during saves, every header byte flipped, every truncation, a full disk
and a file-size limit. The previous checkpoint always loads, every damaged file is refused with a
CheckpointError and changes nothing, and no temporary file outlives the next save.

Crashes run in forked children (minidl is already imported there, so each costs milliseconds); each child ends
with os._exit and never returns into pytest.
"""

import errno
import os
import random
import resource
import signal
import time

import numpy
import pytest

from minidl.backend import seed
from minidl.errors import CheckpointError
from minidl.nn import Activation, Linear, Sequential, relu
from minidl.optim import AdaGrad
from minidl.train import loadCheckpoint, saveCheckpoint
from tests.train.nets import assertSameParams, classifier, hostParams

CHECKPOINT = "run.safetensors"


def setup(width=16):
    seed(4)
    net = classifier(hidden=width)
    return net, AdaGrad(learnRate=0.05).setupOn(net, useGlobalState=True)


def temporaries(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


def loadedEpoch(path, width=16):
    net, optimizer = setup(width)
    return loadCheckpoint(path, net, optimizer).epoch


def inChild(work):
    """Run ``work()`` in a forked child; return its wait status."""
    child = os.fork()
    if child == 0:
        try:
            work()
        finally:
            os._exit(0)
    return os.waitpid(child, 0)[1]


def wideNet():
    """A checkpoint of about 2 MB, so that a kill at a random moment often lands inside a write."""
    seed(5)
    net = Sequential().extend([Linear(6, 512), Activation(relu), Linear(512, 512), Activation(relu), Linear(512, 4)])
    return net, AdaGrad().setupOn(net, useGlobalState=True)


def test_kill_9_at_random_moments_of_saves_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / CHECKPOINT
    net, optimizer = wideNet()
    saveCheckpoint(path, net, optimizer, epoch=0)
    rng = random.Random(8)
    for _ in range(6):
        child = os.fork()
        if child == 0:
            try:
                for epoch in range(1, 10**6):
                    saveCheckpoint(path, net, optimizer, epoch=epoch)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        fresh, freshOptimizer = wideNet()
        assert loadCheckpoint(path, fresh, freshOptimizer).epoch >= 0
    saveCheckpoint(path, net, optimizer, epoch=7)
    assert temporaries(tmp_path) == []
    fresh, freshOptimizer = wideNet()
    assert loadCheckpoint(path, fresh, freshOptimizer).epoch == 7


@pytest.mark.parametrize("moment", ["write", "fsync", "replace"])
def test_kill_9_inside_a_save_keeps_the_previous_file_and_the_next_save_cleans_up(tmp_path, moment):
    """The child kills itself exactly at one step of the save: after writing half the bytes, before the flush
    to disk, or before the rename."""
    path = tmp_path / CHECKPOINT
    net, optimizer = setup()
    saveCheckpoint(path, net, optimizer, epoch=1)
    before = path.read_bytes()

    def crash():
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

        if moment == "write":
            realFdopen = os.fdopen
            os.fdopen = lambda handle, mode: HalfThenDie(realFdopen(handle, mode), die)
        else:
            setattr(os, moment, die)
        saveCheckpoint(path, net, optimizer, epoch=2)

    status = inChild(crash)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert path.read_bytes() == before and loadedEpoch(path) == 1
    assert len(temporaries(tmp_path)) == 1, "the crash left its temporary file (this is what the next save removes)"
    saveCheckpoint(path, net, optimizer, epoch=3)
    assert temporaries(tmp_path) == [] and loadedEpoch(path) == 3


class HalfThenDie:
    """A file whose first write stops halfway: half the bytes reach the file, then ``die()``."""

    def __init__(self, file, die):
        self.file, self.die = file, die

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.file.close()

    def fileno(self):
        return self.file.fileno()

    def write(self, payload):
        self.file.write(payload[:len(payload) // 2])
        self.file.flush()
        self.die()


def test_every_header_byte_flipped_is_refused_and_changes_nothing(tmp_path):
    path = tmp_path / CHECKPOINT
    net, optimizer = setup()
    saveCheckpoint(path, net, optimizer, epoch=3, extra={"history": [{"epoch": 1, "trainError": 0.5}]})
    raw = path.read_bytes()
    headerEnd = 8 + int.from_bytes(raw[:8], "little")
    otherNet = Sequential().extend([Linear(6, 16), Activation(relu), Linear(16, 4)])
    otherOptimizer = AdaGrad(learnRate=0.05).setupOn(otherNet, useGlobalState=True)
    before = hostParams(otherNet), otherOptimizer.getAttrDict()
    loaded = []
    with open(path, "r+b") as file:  # damage one byte at a time, in place
        for position in range(headerEnd):
            file.seek(position)
            file.write(bytes([raw[position] ^ 1 << (position % 8)]))  # every bit position is hit across the header
            file.flush()
            try:
                loadCheckpoint(path, otherNet, otherOptimizer)
                loaded.append(position)
            except CheckpointError:
                pass
            file.seek(position)
            file.write(raw[position:position + 1])
    assert loaded == [], f"flips at header bytes {loaded[:10]} loaded silently"
    assertSameParams(hostParams(otherNet), before[0])
    assert otherOptimizer.getAttrDict() == before[1]
    assert loadedEpoch(path) == 3  # the file restored byte by byte loads again: the loop damaged what it meant to


def test_every_truncation_is_refused(tmp_path):
    path = tmp_path / CHECKPOINT
    net, optimizer = setup()
    saveCheckpoint(path, net, optimizer, epoch=3)
    fresh, freshOptimizer = setup()
    with open(path, "r+b") as file:
        for length in reversed(range(os.path.getsize(path))):  # cut one more byte each time
            file.truncate(length)
            with pytest.raises(CheckpointError, match=str(path)):
                loadCheckpoint(path, fresh, freshOptimizer)


def test_a_file_size_limit_is_a_clear_error_and_keeps_the_old_file(tmp_path):
    path = tmp_path / CHECKPOINT
    small, smallOptimizer = setup(width=4)
    saveCheckpoint(path, small, smallOptimizer, epoch=1)
    before = path.read_bytes()
    net, optimizer = setup(width=256)  # its checkpoint is larger than the limit
    reading, writing = os.pipe()

    def saveUnderLimit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 1024, resource.RLIM_INFINITY))
        try:
            saveCheckpoint(path, net, optimizer, epoch=2)
            message = "saved"
        except CheckpointError as error:
            message = str(error)
        os.write(writing, message.encode())

    inChild(saveUnderLimit)
    os.close(writing)
    with os.fdopen(reading) as pipe:
        message = pipe.read()
    assert message.startswith(f"cannot write {path}: [Errno {errno.EFBIG}]"), message
    assert path.read_bytes() == before and temporaries(tmp_path) == []
    assert loadedEpoch(path, width=4) == 1


def test_a_full_disk_is_a_clear_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / CHECKPOINT
    net, optimizer = setup()
    saveCheckpoint(path, net, optimizer, epoch=1)
    before = path.read_bytes()

    def full(handle):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # where a full disk shows on delayed-allocation file systems
    with pytest.raises(CheckpointError, match=f"cannot write {path}: .*No space left on device"):
        saveCheckpoint(path, net, optimizer, epoch=2)
    monkeypatch.undo()
    assert path.read_bytes() == before and temporaries(tmp_path) == []
    assert numpy.isfinite(loadedEpoch(path))
