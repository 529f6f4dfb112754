"""Variable refuses, when it is made, data that the optimizers' kernels could not update: otherwise a step
would update the Variables before it and then fail on this one, leaving the model half-updated."""

import numpy
import pytest

from minidl import ModuleError
from minidl.backend import isGpu, toHost, xp
from minidl.variable import Variable


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_float_dtypes_are_taken_with_a_contiguous_zero_grad(dtype):
    var = Variable(xp.ones((3, 2), dtype))
    assert var.grad.dtype == dtype and var.grad.flags.c_contiguous and not toHost(var.grad).any()


@pytest.mark.skipif(isGpu, reason="CuPy has neither long double nor big-endian arrays")
@pytest.mark.parametrize("dtype", [numpy.longdouble, ">f4"])
def test_dtypes_the_kernels_have_no_c_type_for_are_refused(dtype):
    if numpy.dtype(dtype) in (numpy.dtype(numpy.float64), numpy.dtype(numpy.float32)):
        pytest.skip("long double is float64 on this platform")
    with pytest.raises(ModuleError, match=rf"floating dtype the kernels take .*, got {numpy.dtype(dtype)}"):
        Variable(numpy.ones((4, 2), dtype))


@pytest.mark.parametrize("data, strides", [
    (xp.ones((2, 4), xp.float32).T, r"\(4, 16\)"),
    (xp.ones((4, 4), xp.float32)[:, ::2], r"\(16, 8\)"),
])
def test_strided_data_is_refused(data, strides):
    with pytest.raises(ModuleError, match=rf"data must be C-contiguous, got strides {strides}"):
        Variable(data)


def test_a_strided_grad_is_refused():
    with pytest.raises(ModuleError, match="grad must be C-contiguous"):
        Variable(xp.ones((2, 2), xp.float32), grad=xp.ones((2, 2), xp.float32).T)
