"""A train pass that a module refuses halfway leaves every buffer as it was: BatchNorm's running statistics (kept by
its own forward kernel, no copy made), also when one BatchNorm is used twice in the pass, and a module's own
buffers (copied by the default ``markBuffers``)."""

import numpy
import pytest

from minidl import backend, nn
from minidl.errors import ModuleError


class Counter(nn.Module):
    """A module with a buffer it changes in every train pass (it counts them)."""

    def __init__(self):
        super().__init__()
        self.count = backend.xp.zeros(1)

    def getBufferTable(self):
        return {"count": self.count}

    def updData(self, data):
        self.count += 1
        return data


def buffers(net):
    return {name: backend.toHost(array).tobytes() for name, array in net.getBufferTable().items()}


def test_a_refused_train_pass_puts_every_buffer_back():
    backend.seed(0)
    shared = nn.BatchNorm1D(4)
    counter = Counter()
    good = nn.Sequential().extend([shared, counter, shared])
    bad = nn.Sequential().extend([shared, counter, shared, nn.Linear(7, 2)])  # the data's last axis holds 5
    data = backend.toDevice(numpy.random.default_rng(0).standard_normal((6, 4, 5)).astype(numpy.float32))
    good.trainMode()
    bad.trainMode()
    good(data)  # running statistics away from their start
    before = buffers(good)
    with pytest.raises(ModuleError, match="input must have shape"):
        bad(data)
    assert buffers(good) == before
    good(data * 2)  # and the pass that does not fail changes them
    after = buffers(good)
    assert after["0.mean"] != before["0.mean"] and after["1.count"] != before["1.count"]
