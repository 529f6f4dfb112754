"""Small networks and data shared by the training tests."""

import numpy

from minidl.datasets import gaussianBlobs
from minidl.nn import Activation, Linear, Sequential, relu

BLOBS = gaussianBlobs(samples=500, features=6, classes=4, spread=1.5, seed=7)


def classifier(hidden=16, features=6, classes=4):
    return Sequential().extend([Linear(features, hidden), Activation(relu), Linear(hidden, classes)])


def hostParams(module):
    from minidl.backend import toHost

    return {name: toHost(var.data).copy() for name, var in module.getVarTable().items()}


def assertSameParams(actual, expected):
    assert list(actual) == list(expected)
    for name in expected:
        numpy.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
