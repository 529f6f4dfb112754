"""Validator and Calculator run a module in eval mode and give every module its previous mode back."""

import numpy
import pytest

from minidl import ModuleError
from minidl.cost import CrossEntropy
from minidl.nn import Dropout, Linear, Sequential
from minidl.train import Calculator, Validator


def _net():
    net = Sequential(Linear(4, 3), Dropout(0.5), Linear(3, 3))
    net.trainMode()
    net[1].evalMode()  # a mixed tree: each module's own mode must come back, not one mode for all
    return net


@pytest.mark.parametrize("run", [
    lambda net, data, labels: Validator(net, CrossEntropy(), verbose=False).validateFromHost(data, labels),
    lambda net, data, labels: Calculator(net, verbose=False).calcFromHost(data),
])
def test_a_finished_pass_restores_every_modules_mode(run):
    net = _net()
    data = numpy.random.default_rng(0).normal(size=(10, 4)).astype(numpy.float32)
    run(net, data, numpy.arange(10, dtype=numpy.int32) % 3)
    assert [module.train for module in net.walk()] == [True, True, False, True]


def test_a_failed_pass_restores_modes_too():
    net = _net()
    with pytest.raises(ModuleError, match="shape|width|columns|size"):
        Calculator(net, verbose=False).calcFromHost(numpy.zeros((5, 7), numpy.float32))  # wrong width
    assert [module.train for module in net.walk()] == [True, True, False, True]
