"""Augmentation against a per-image loop over the same draws, and as a Trainer option (seeded, resumable)."""

import numpy
import pytest

from minidl.backend import generator, seed
from minidl.cost import CrossEntropy
from minidl.datasets import Augment
from minidl.errors import DataError
from minidl.nn import Flatten, Linear, Sequential
from minidl.optim import SGD
from minidl.train import Trainer
from tests.train.nets import assertSameParams, hostParams

IMAGES = numpy.random.default_rng(1).normal(size=(9, 2, 5, 6)).astype(numpy.float32)


def loopOracle(images, crop, flip, rng):
    """Each image: zero-pad by crop, cut the window at the drawn offset, mirror when its uniform is < 1/2."""
    offsets = rng.integers(0, 2 * crop + 1, size=(len(images), 2)) if crop else numpy.full((len(images), 2), crop)
    flips = rng.random(len(images)) < 0.5 if flip else numpy.zeros(len(images), bool)
    out = numpy.empty_like(images)
    height, width = images.shape[2:]
    for index, image in enumerate(images):
        padded = numpy.zeros((image.shape[0], height + 2 * crop, width + 2 * crop), image.dtype)
        padded[:, crop:crop + height, crop:crop + width] = image
        dy, dx = offsets[index]
        window = padded[:, dy:dy + height, dx:dx + width]
        out[index] = window[:, :, ::-1] if flips[index] else window
    return out


@pytest.mark.parametrize("crop, flip", [(0, True), (2, False), (3, True), (0, False)])
def test_augment_is_the_per_image_loop_over_the_same_draws(crop, flip):
    seed(11)
    actual = Augment(crop, flip)(IMAGES)
    expected = loopOracle(IMAGES, crop, flip, numpy.random.default_rng(11))
    numpy.testing.assert_array_equal(actual, expected)
    assert actual is not IMAGES and actual.flags.c_contiguous
    if flip and not crop:
        assert 0 < sum(not numpy.array_equal(a, b) for a, b in zip(actual, IMAGES)) < len(IMAGES)


def test_bad_augment_settings_and_images_raise():
    for crop, flip in ((-1, False), (1.5, False), (1, "yes")):
        with pytest.raises(DataError):
            Augment(crop, flip)
    with pytest.raises(DataError, match=r"\(N, C, H, W\)"):
        Augment(1)(IMAGES.reshape(9, -1))


def imageNet():
    return Sequential().extend([Flatten(), Linear(60, 3)])


def test_augmented_training_is_seeded_and_checks_the_data_before_drawing():
    labels = numpy.arange(9, dtype=numpy.int32) % 3
    runs = []
    for _ in range(2):
        seed(4)
        net = imageNet()
        trainer = Trainer(net, CrossEntropy(), SGD(learnRate=0.1).setupOn(net), batchsize=4, verbose=False,
                          augment=Augment(1, True))
        trainer.trainFromHost(IMAGES, labels)
        runs.append(hostParams(net))
    assertSameParams(runs[0], runs[1])
    seed(4)
    plain = imageNet()
    Trainer(plain, CrossEntropy(), SGD(learnRate=0.1).setupOn(plain), batchsize=4, verbose=False).trainFromHost(
        IMAGES, labels)
    assert not numpy.array_equal(hostParams(plain)["1.W"], runs[0]["1.W"])
    state = generator().bit_generator.state
    with pytest.raises(DataError, match="augmentation needs"):
        trainer.trainFromHost(IMAGES.reshape(9, 60), labels)
    assert generator().bit_generator.state == state
    with pytest.raises(DataError, match="Augment"):
        Trainer(net, CrossEntropy(), SGD().setupOn(net), augment=lambda images: images)
