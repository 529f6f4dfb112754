"""Model builders for the ``minidl`` command and the benchmarks, by name.

Each entry of ``MODELS`` says how to build the network for samples of a given shape and how many
classes it scores, and whether it takes flat samples (features) or images (channels, height, width).
Adding a model is adding one entry.
"""

from collections.abc import Callable
from typing import NamedTuple

from minidl.nn import Activation, BatchNorm2D, Conv2D, Dropout, Flatten, Linear, MaxPool2D, Sequential, relu


class ModelSpec(NamedTuple):
    build: Callable  # build(sampleShape, classes) -> Module giving raw class scores
    flat: bool  # True: samples are feature vectors; False: images (channels, height, width)


def mlp(sampleShape, classes, hidden=(256, 256)):
    """Linear → ReLU per hidden width, then Linear to the class scores (64-256-256-10 on digits)."""
    net = Sequential()
    size = sampleShape[0]
    for width in hidden:
        net.extend([Linear(size, width, initscheme="he"), Activation(relu)])
        size = width
    return net.append(Linear(size, classes))


def cnn(sampleShape, classes, maps=(8, 16), hidden=32):
    """LeNet-style: per entry of maps a 3x3 Conv2D (padded) → ReLU → 2x2 MaxPool2D, BatchNorm2D after the
    first convolution; then Flatten → Linear(hidden) → ReLU → Dropout(0.2) → Linear to the class scores
    (on digits: 1x8x8 → 8x4x4 → 16x2x2 → 64 → 32 → 10)."""
    inmaps, height, width = sampleShape
    net = Sequential()
    for index, outmaps in enumerate(maps):
        net.append(Conv2D(inmaps, outmaps, 3, pad=1))
        if index == 0:
            net.append(BatchNorm2D(outmaps))
        net.extend([Activation(relu), MaxPool2D()])
        inmaps, height, width = outmaps, height // 2, width // 2
    return net.extend([Flatten(), Linear(inmaps * height * width, hidden), Activation(relu), Dropout(0.2),
                       Linear(hidden, classes)])


MODELS = {
    "mlp": ModelSpec(mlp, flat=True),
    "cnn": ModelSpec(cnn, flat=False),
}
