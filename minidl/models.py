"""Model builders for the ``minidl`` command and the benchmarks, by name.

Each entry of ``MODELS`` says how to build the network for samples of a given shape and how many
classes it scores, and whether it takes flat samples (features) or images (channels, height, width).
Adding a model is adding one entry.
"""

from collections.abc import Callable
from typing import NamedTuple

from minidl.nn import Activation, Linear, Sequential, relu


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


MODELS = {
    "mlp": ModelSpec(mlp, flat=True),
}
