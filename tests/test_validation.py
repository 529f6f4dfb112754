"""Constructors refuse NaN, infinities, bools and non-integers where sizes are expected, with minidl errors that
name the argument; the shared checks in minidl.validation say what they accept."""

import numpy
import pytest

from minidl import CostError, ModuleError
from minidl.cost import SVM, SmoothL1
from minidl.nn import (
    Activation,
    AvgPool2D,
    BatchNorm,
    BatchNorm2D,
    Concat,
    Conv2D,
    Dropout,
    Embedder,
    Linear,
    MaxPool2D,
    Reshape,
    Split,
    elu,
    leakyRelu,
)
from minidl.validation import checkInteger, checkNumber, checkSize

NAN, INF = float("nan"), float("inf")

BAD_MODULES = {  # a bad constructor call -> a word its error must contain
    "Linear(nan, 3)": (lambda: Linear(NAN, 3), "insize"),
    "Linear(3, 2.5)": (lambda: Linear(3, 2.5), "outsize"),
    "Linear(3.0, 2)": (lambda: Linear(3.0, 2), "insize"),
    "Linear(True, 2)": (lambda: Linear(True, 2), "insize"),
    "Linear(0, 2)": (lambda: Linear(0, 2), "insize"),
    "BatchNorm(3, epsilon=nan)": (lambda: BatchNorm(3, epsilon=NAN), "epsilon"),
    "BatchNorm(3, epsilon=inf)": (lambda: BatchNorm(3, epsilon=INF), "epsilon"),
    "BatchNorm(3, momentum=nan)": (lambda: BatchNorm(3, momentum=NAN), "momentum"),
    "BatchNorm(2.5)": (lambda: BatchNorm(2.5), "size"),
    "BatchNorm2D(nan)": (lambda: BatchNorm2D(NAN), "size"),
    "Conv2D(3, 2.5, 3)": (lambda: Conv2D(3, 2.5, 3), "outmaps"),
    "Conv2D(nan, 2, 3)": (lambda: Conv2D(NAN, 2, 3), "inmaps"),
    "Conv2D(4, 2, 3, groups=2.0)": (lambda: Conv2D(4, 2, 3, groups=2.0), "groups"),
    "Conv2D(3, 2, 2.5)": (lambda: Conv2D(3, 2, 2.5), "size"),
    "Conv2D(3, 2, 3, stride=nan)": (lambda: Conv2D(3, 2, 3, stride=NAN), "stride"),
    "Conv2D(3, 2, 3, pad=True)": (lambda: Conv2D(3, 2, 3, pad=True), "pad"),
    "MaxPool2D(2.5)": (lambda: MaxPool2D(2.5), "size"),
    "AvgPool2D(2, stride=inf)": (lambda: AvgPool2D(2, stride=INF), "stride"),
    "Dropout(nan)": (lambda: Dropout(NAN), "p"),
    "Dropout(True)": (lambda: Dropout(True), "p"),
    "Embedder(nan, 3)": (lambda: Embedder(NAN, 3), "vocabulary"),
    "Embedder(5, 2.5)": (lambda: Embedder(5, 2.5), "size"),
    "Split(1, (2.5, 2))": (lambda: Split(1, (2.5, 2)), "sections"),
    "Split(1.5, (2, 2))": (lambda: Split(1.5, (2, 2)), "axis"),
    "Reshape((2.5, -1))": (lambda: Reshape((2.5, -1)), "shape"),
    "Concat(axis=nan)": (lambda: Concat(axis=NAN), "axis"),
    "Activation(leakyRelu, args=(nan,))": (lambda: Activation(leakyRelu, args=(NAN,)), "alpha"),
    "Activation(elu, args=(inf,))": (lambda: Activation(elu, args=(INF,)), "alpha"),
}


@pytest.mark.parametrize("call", sorted(BAD_MODULES))
def test_module_constructors_refuse_bad_sizes_and_numbers(call):
    make, word = BAD_MODULES[call]
    with pytest.raises(ModuleError, match=word):
        make()


@pytest.mark.parametrize("make", [lambda: SmoothL1(NAN), lambda: SmoothL1(INF), lambda: SmoothL1(True),
                                  lambda: SmoothL1(0.0), lambda: SVM(mode=1.0)])
def test_cost_constructors_refuse_bad_numbers(make):
    with pytest.raises(CostError):
        make()


def test_good_values_of_any_integer_and_real_type_are_taken():
    assert Linear(numpy.int64(3), 2).insize == 3
    assert BatchNorm(numpy.int32(2), epsilon=numpy.float32(1e-3)).size == 2
    assert Conv2D(2, 4, (3, 1), groups=2).window.size == (3, 1)
    assert SmoothL1(numpy.float64(0.5)).beta == 0.5


def test_the_checks():
    assert checkInteger(numpy.int8(-3), "k") == -3 and type(checkInteger(numpy.int8(-3), "k")) is int
    assert checkSize(4, "k") == 4
    assert checkNumber(numpy.float32(0.5), "k", low=0, high=1, highOpen=True) == 0.5
    for bad in (True, 2.0, NAN, "3", None):
        with pytest.raises(ModuleError, match="k must be an integer, got"):
            checkInteger(bad, "k")
    with pytest.raises(CostError, match=r"k must be an integer >= 1, got 0"):
        checkSize(0, "k", CostError)
    for bad in (NAN, INF, -INF, True, "0.5", None):
        with pytest.raises(ModuleError, match="k must be a finite real number"):
            checkNumber(bad, "k")
    with pytest.raises(ModuleError, match=r"k must lie in \(0, 1\], got 0.0"):
        checkNumber(0, "k", low=0, high=1, lowOpen=True)
    with pytest.raises(ModuleError, match=r"k must lie in \[0, 1\), got 1.0"):
        checkNumber(1, "k", low=0, high=1, highOpen=True)
