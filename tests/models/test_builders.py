"""The model builders: ResNet-18/34 and LeNet-5 have the published parameter counts and output shapes, and a
narrow ResNet and LeNet-5 learn the digits."""

import numpy
import pytest

from minidl import backend
from minidl.backend import toDevice, toHost
from minidl.cost import CrossEntropy
from minidl.datasets import loadDigits
from minidl.models import MODELS
from minidl.models.resnet import resnet
from minidl.optim import Adam


@pytest.mark.parametrize("name, sampleShape, params", [
    ("resnet18", (3, 32, 32), 11_173_962),  # the CIFAR ResNet-18 (basic blocks, 1x1 projections), 10 classes
    ("resnet34", (3, 32, 32), 21_282_122),
    ("resnet18", (3, 224, 224), 11_689_512),  # ImageNet's stem from 64 pixels on: torchvision's resnet18
    ("lenet", (1, 28, 28), 61_706),  # LeNet-5: 156 + 2,416 + 48,120 + 10,164 + 850
    ("lenet", (1, 8, 8), 21_386),  # the second convolution padded: 16x2x2 features into Linear(120)
])
def test_builders_have_the_published_parameter_counts(name, sampleShape, params):
    backend.seed(0)
    assert MODELS[name].build(sampleShape, 1000 if sampleShape[1] == 224 else 10).numOfParams() == params


@pytest.mark.parametrize("name", ["resnet18", "lenet"])
@pytest.mark.parametrize("sampleShape", [(3, 32, 32), (1, 8, 8), (1, 64, 64)], ids=["32x32", "digits 8x8", "64 grey"])
def test_builders_score_every_class_for_each_image(name, sampleShape):
    backend.seed(0)
    net = MODELS[name].build(sampleShape, 10)
    images = toDevice(numpy.random.default_rng(0).standard_normal((2, *sampleShape)), dtype=numpy.float32)
    scores = toHost(net.evalMode()(images))
    assert scores.shape == (2, 10) and numpy.isfinite(scores).all()


def test_the_lstm_classifier_reads_every_row_of_a_colour_image_as_one_sequence():
    """Images of 3 channels (CIFAR-10's 3x32x32, here 3x4x5): one row of scores per image, the LSTM reading the
    12 rows of the channels one after another (an RNN and Linear with the same weights as the oracle)."""
    backend.seed(0)
    net = MODELS["lstm"].build((3, 4, 5), 10)
    images = numpy.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(numpy.float32)
    scores = toHost(net.evalMode()(toDevice(images)))
    rnn, linear = net.modules[2], net.modules[3]
    expected = toHost(linear(rnn(toDevice(numpy.ascontiguousarray(images.reshape(2, 12, 5).swapaxes(0, 1))))))
    assert scores.shape == (2, 10)
    numpy.testing.assert_allclose(scores, expected, rtol=1e-6)


def trainDigits(net, epochs, batch=32, alpha=2e-3):
    digits = loadDigits(flat=False)
    optimizer = Adam(alpha=alpha).setupOn(net, useGlobalState=True)
    cost = CrossEntropy()
    for _ in range(epochs):
        order = backend.generator().permutation(len(digits.trainData))
        for start in range(0, len(order), batch):
            part = order[start:start + batch]
            _, grad = cost(net(toDevice(digits.trainData[part])), toDevice(digits.trainLabels[part]))
            optimizer.zeroGradParams()
            net.backward(grad, updGrad=False)
            optimizer.update()
    predicted = toHost(net.evalMode()(toDevice(digits.valData))).argmax(axis=1)
    return (predicted == digits.valLabels).mean()


def test_a_narrow_resnet_learns_the_digits():
    pytest.importorskip("sklearn")
    backend.seed(0)
    assert trainDigits(resnet((1, 8, 8), 10, blocks=(1, 1), width=8), epochs=3) >= 0.88


def test_lenet5_learns_the_digits():
    pytest.importorskip("sklearn")
    backend.seed(0)
    assert trainDigits(MODELS["lenet"].build((1, 8, 8), 10), epochs=5) >= 0.9
