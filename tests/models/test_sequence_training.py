"""Sequence models train to stated bounds in a few seconds: an LSTM classifier of sequences, and both
language models on a periodic text they must learn to continue."""

import numpy
import pytest

from minidl import backend
from minidl.backend import toDevice, toHost
from minidl.cost import CrossEntropy
from minidl.models import LANGUAGE_MODELS, lstmClassifier
from minidl.optim import Adam


def sequenceSigns(rng, count, steps=5):
    """Sequences of an odd number of noisy ±1 steps; the class is 1 when their sum is positive (the net must
    integrate; an odd count keeps every sum of the ±1 parts at least 1 away from 0)."""
    data = rng.choice([-1.0, 1.0], (count, 1, steps, 1)) + rng.normal(0, 0.3, (count, 1, steps, 1))
    return data.astype(numpy.float32), (data.sum(axis=(1, 2, 3)) > 0).astype(numpy.int32)


def test_lstm_classifier_learns_the_sign_of_a_sum():
    backend.seed(0)
    rng = numpy.random.default_rng(0)
    data, labels = sequenceSigns(rng, 512)
    net = lstmClassifier((1, 5, 1), 2, hidden=16)
    optimizer, cost = Adam(alpha=0.02).setupOn(net, useGlobalState=True), CrossEntropy()
    for _ in range(120):
        rows = rng.integers(0, 384, 32)
        _, grad = cost(net(toDevice(data[rows])), toDevice(labels[rows]))
        optimizer.zeroGradParams()
        net.backward(grad)
        optimizer.update()
    predicted = toHost(net.evalMode()(toDevice(data[384:]))).argmax(axis=1)
    assert (predicted == labels[384:]).mean() >= 0.95


@pytest.mark.parametrize("name", sorted(LANGUAGE_MODELS))
def test_language_model_learns_a_periodic_text(name):
    """"the cat sat. " repeated: after training, the next character of held-out windows is certain except
    at the window's first steps, so the mean loss must fall below 0.3 nats (from log 9 ≈ 2.2)."""
    backend.seed(0)
    rng = numpy.random.default_rng(0)
    text = "the cat sat. " * 40
    vocabulary = sorted(set(text))
    codes = numpy.array([vocabulary.index(char) for char in text], numpy.int32)
    options = {"embed": 16, "hidden": 32} if name == "lstm" else {"embed": 16, "heads": 2, "layers": 1, "maxLength": 16}
    net = LANGUAGE_MODELS[name](len(vocabulary), **options)
    optimizer, cost = Adam(alpha=0.02).setupOn(net, useGlobalState=True), CrossEntropy()

    def windows(starts):
        batch = numpy.stack([codes[start:start + 17] for start in starts], axis=1)  # (time + 1, batch)
        return toDevice(batch[:-1].copy()), toDevice(batch[1:].reshape(-1).copy())

    for _ in range(80):
        inputs, targets = windows(rng.integers(0, len(codes) - 17, 16))
        _, grad = cost(net(inputs), targets)
        optimizer.zeroGradParams()
        net.backward(grad)
        optimizer.update()
    inputs, targets = windows(range(0, 160, 10))
    assert cost.validate(net.evalMode()(inputs), targets) < 0.3
