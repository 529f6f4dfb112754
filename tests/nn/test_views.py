"""Views that are not C-contiguous (a transposed array, a strided slice) are valid input: the modules whose
kernels take C-contiguous arrays give on them what they give on a contiguous copy, not a contiguity error."""

import numpy
import pytest

from minidl.backend import seed, toDevice, toHost
from minidl.nn import Activation, BatchNorm, Dropout, SoftMax, gelu, relu

rng = numpy.random.default_rng(3)


def views(shape):
    """Host values, and the same values on the device as a transposed (F-ordered) view and a strided slice."""
    values = rng.standard_normal(shape)
    transposed = toDevice(numpy.ascontiguousarray(values.T)).T
    strided = toDevice(numpy.repeat(values, 2, axis=1))[:, ::2]
    assert not transposed.flags.c_contiguous and not strided.flags.c_contiguous
    return values, {"transposed": transposed, "strided": strided}


MODULES = {
    "relu": lambda: Activation(relu),  # its derivative reads y
    "gelu": lambda: Activation(gelu),  # its derivative reads x
    "softmax": SoftMax,
    "dropout": lambda: Dropout(0.3),
    "batchnorm": lambda: BatchNorm(4, dtype=numpy.float64),
}


@pytest.mark.parametrize("layout", ["transposed", "strided"])
@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_take_views_as_input_and_gradient(name, layout):
    values, inputs = views((6, 4))
    grads, gradViews = views((6, 4))
    seed(0)
    reference = MODULES[name]()
    expected = toHost(reference(toDevice(values))), toHost(reference.backward(toDevice(grads)))
    seed(0)  # Dropout draws the same mask
    module = MODULES[name]()
    numpy.testing.assert_allclose(toHost(module(inputs[layout])), expected[0], rtol=1e-12, atol=1e-15)
    numpy.testing.assert_allclose(toHost(module.backward(gradViews[layout])), expected[1], rtol=1e-12, atol=1e-15)
