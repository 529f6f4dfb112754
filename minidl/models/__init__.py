"""Model builders for the ``minidl`` command and the benchmarks, by name.

Each entry of ``MODELS`` says how to build the network for samples of a given shape and how many
classes it scores, and whether it takes flat samples (features) or images (channels, height, width).
Adding a model is adding one file beside this one and one entry here.
"""

from collections.abc import Callable
from typing import NamedTuple

from minidl.models.lenet import cnn, lenet
from minidl.models.lstmclassifier import lstmClassifier
from minidl.models.lstmlm import lstmLM
from minidl.models.mlp import mlp
from minidl.models.resnet import resnet18, resnet34
from minidl.models.transformerlm import transformerLM


class ModelSpec(NamedTuple):
    build: Callable  # build(sampleShape, classes) -> Module giving raw class scores
    flat: bool  # True: samples are feature vectors; False: images (channels, height, width)


MODELS = {
    "mlp": ModelSpec(mlp, flat=True),
    "cnn": ModelSpec(cnn, flat=False),
    "lenet": ModelSpec(lenet, flat=False),
    "resnet18": ModelSpec(resnet18, flat=False),
    "resnet34": ModelSpec(resnet34, flat=False),
    "lstm": ModelSpec(lstmClassifier, flat=False),
}

LANGUAGE_MODELS = {  # name -> build(vocabulary, **options): indices (time, batch) -> scores (time·batch, vocabulary)
    "lstm": lstmLM,
    "transformer": transformerLM,
}
