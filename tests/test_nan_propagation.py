"""One NaN in the data reaches the outputs and the gradients of every module and cost, as IEEE arithmetic and
PyTorch carry it: nothing turns it into a number (the kernels' own property tests hold every path to this)."""

import numpy
import pytest

from minidl.backend import toDevice, toHost
from minidl.nn import (
    LCN,
    Activation,
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    BatchNorm,
    BatchNorm1D,
    BatchNorm2D,
    BatchNorm3D,
    Conv2D,
    Conv3D,
    CrossMapLRN,
    Deconv1D,
    Deconv3D,
    Dropout,
    Dropout2D,
    KMaxPool,
    Linear,
    MapLRN,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    NoiseInjector,
    Penalty,
    PRelu,
    SoftMax,
    SubtractMean,
    activationfunctions,
)
from tests.cost.costcases import costCases

rng = numpy.random.default_rng(5)

MODULES = {  # name -> (module maker, input shape)
    **{fn.name: (lambda fn=fn: Activation(fn), (2, 6)) for fn in activationfunctions.ALL},
    "Linear": (lambda: Linear(6, 3), (2, 6)),
    "BatchNorm": (lambda: BatchNorm(6), (3, 6)),
    "BatchNorm2D": (lambda: BatchNorm2D(2), (2, 2, 4, 4)),
    "Conv2D": (lambda: Conv2D(2, 3, 3, pad=1), (2, 2, 4, 4)),
    "MaxPool2D": (lambda: MaxPool2D(2), (2, 2, 4, 4)),
    "AvgPool2D": (lambda: AvgPool2D(2), (2, 2, 4, 4)),
    "SoftMax": (lambda: SoftMax(), (2, 6)),
    "Dropout": (lambda: Dropout(0.5), (4, 6)),
    "PRelu": (lambda: PRelu(2), (2, 2, 4, 4)),
    "Penalty": (lambda: Penalty("l1"), (2, 6)),
    "Dropout2D": (lambda: Dropout2D(0.5), (4, 6, 2)),
    "NoiseInjector": (lambda: NoiseInjector("mul"), (2, 6)),
    "CrossMapLRN": (lambda: CrossMapLRN(3), (2, 4, 3, 3)),
    "MapLRN": (lambda: MapLRN(3), (2, 2, 4, 4)),
    "LCN": (lambda: LCN(3), (2, 2, 4, 4)),
    "SubtractMean": (lambda: SubtractMean(3), (2, 2, 4, 4)),
    "Conv3D": (lambda: Conv3D(2, 3, 3, pad=1), (2, 2, 3, 4, 4)),
    "Deconv1D": (lambda: Deconv1D(2, 3, 3, stride=2), (2, 2, 5)),
    "Deconv3D": (lambda: Deconv3D(2, 3, 2, stride=2), (2, 2, 2, 3, 2)),
    "MaxPool1D": (lambda: MaxPool1D(2), (2, 2, 6)),
    "MaxPool3D": (lambda: MaxPool3D(2), (2, 2, 4, 4, 4)),
    "AvgPool1D": (lambda: AvgPool1D(3, 1, 1), (2, 2, 6)),
    "AvgPool3D": (lambda: AvgPool3D(2), (2, 2, 4, 4, 4)),
    "BatchNorm1D": (lambda: BatchNorm1D(2), (2, 2, 5)),
    "BatchNorm3D": (lambda: BatchNorm3D(2), (2, 2, 2, 3, 2)),
    "KMaxPool": (lambda: KMaxPool(3), (2, 2, 6)),
}


def withNan(shape, dtype=numpy.float32):
    """Ordinary values, NaN at index 0 of every axis."""
    x = rng.standard_normal(shape).astype(dtype)
    x[(0,) * len(shape)] = numpy.nan
    return x


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_nan_in_the_data_reaches_the_output_and_the_gradients(name):
    make, shape = MODULES[name]
    module = make()
    out = toHost(module(toDevice(withNan(shape))))
    assert numpy.isnan(out[0]).any(), f"{name}: the NaN of sample 0 vanished from the output"
    module(toDevice(rng.standard_normal(shape).astype(numpy.float32)))
    ingrad = toHost(module.backward(toDevice(withNan(out.shape))))
    assert numpy.isnan(ingrad[0]).any(), f"{name}: the NaN of the output gradient vanished from the input gradient"
    for varName, var in module.getVarTable().items():
        assert numpy.isnan(toHost(var.grad)).any(), f"{name}: the NaN gradient vanished from ∂{varName}"


def test_max_pooling_takes_nan_as_the_maximum_of_its_window():
    x = rng.standard_normal((1, 1, 4, 4)).astype(numpy.float32)
    x[0, 0, 1, 2] = numpy.nan
    out = toHost(MaxPool2D(2)(toDevice(x)))
    assert numpy.isnan(out[0, 0, 0, 1]) and numpy.isfinite(numpy.delete(out.ravel(), 1)).all()


@pytest.mark.parametrize("name", sorted(costCases(rng)))
def test_a_nan_prediction_gives_a_nan_error_and_gradient(name):
    cost, target = costCases(rng)[name]
    shape = (3, 4)
    error, grad = cost()(toDevice(withNan(shape)), toDevice(numpy.asarray(target(shape), numpy.float32)
                                                         if name not in ("crossEntropy", "svm") else target(shape)))
    assert numpy.isnan(error), f"{name}: the error of a NaN prediction is {error}"
    assert numpy.isnan(toHost(grad)[0, 0]), f"{name}: the gradient at the NaN prediction is {toHost(grad)[0, 0]}"
