"""A run resumed from a checkpoint draws the same dropout masks and noise as the uninterrupted run: the device
generator's (seed, counter) travels in the checkpoint, so the parameters come out bit-identical."""

import numpy

from minidl import backend
from minidl.nn import Activation, Dropout, Linear, NoiseInjector, Sequential, relu
from minidl.optim import Adam
from minidl.train import loadCheckpoint, saveCheckpoint
from tests.optim.test_optimizers import train
from tests.train.nets import assertSameParams, hostParams

RNG = numpy.random.default_rng(0)
DATA = RNG.standard_normal((16, 5)).astype(numpy.float32)
TARGET = RNG.standard_normal((16, 2)).astype(numpy.float32)


def setup():
    noise = NoiseInjector("mul", "gaussian", (1.0, 0.2))
    net = Sequential().extend([Linear(5, 12), Activation(relu), Dropout(0.3), noise, Linear(12, 2)])
    return net, Adam(alpha=0.01).setupOn(net, useGlobalState=True)


def steps(net, optimizer, count):
    train(net, optimizer, count, DATA, TARGET)


def test_a_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    backend.seed(21)
    net, optimizer = setup()
    steps(net, optimizer, 3)
    saveCheckpoint(tmp_path / "half.safetensors", net, optimizer, epoch=1)
    steps(net, optimizer, 3)
    expected = hostParams(net)

    backend.seed(5)  # another run in between: other parameters, another device state
    other, otherOptimizer = setup()
    steps(other, otherOptimizer, 2)
    loadCheckpoint(tmp_path / "half.safetensors", other, otherOptimizer)
    assert backend.getRandomState()["device"] == {"seed": 21, "counter": 6}  # two draws in each of three steps
    steps(other, otherOptimizer, 3)
    assertSameParams(hostParams(other), expected)

    backend.seed(21)  # and the masks matter: a run that skips a draw ends elsewhere
    third, thirdOptimizer = setup()
    steps(third, thirdOptimizer, 3)
    backend.deviceDraw()
    steps(third, thirdOptimizer, 3)
    assert any(not numpy.array_equal(hostParams(third)[name], expected[name]) for name in expected)
