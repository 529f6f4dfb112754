"""Module basics: Variables, parameter access, initialisation schemes, construction errors."""

import math

import numpy
import pytest

from minidl import ModuleError, Variable, backend
from minidl.backend import toDevice, toHost
from minidl.nn import Activation, Add, Concat, Linear, Mul, Sequential, elu, leakyRelu, relu


def test_linear_xavier_default_and_he_statistics():
    backend.seed(0)
    xavier = toHost(Linear(400, 600).W)
    bound = math.sqrt(6 / 1000)
    assert numpy.abs(xavier).max() <= bound
    assert xavier.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)  # uniform on ±bound
    he = toHost(Linear(400, 600, initscheme="he").W)
    assert he.std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert not toHost(Linear(4, 3).b).any()


def test_the_same_seed_gives_the_same_network():
    backend.seed(5)
    first = toHost(Linear(3, 3).W)
    backend.seed(5)
    numpy.testing.assert_array_equal(first, toHost(Linear(3, 3).W))


def test_linear_without_bias_and_dtype():
    layer = Linear(3, 2, useBias=False, dtype=numpy.float64)
    assert list(layer.vars) == ["W"] and layer.W.dtype == numpy.float64 and layer.numOfParams() == 6


@pytest.mark.parametrize("kwargs, message", [
    ({"insize": 0, "outsize": 2}, "insize must be an integer >= 1, got 0"),
    ({"insize": 2, "outsize": 2.5}, "outsize must be an integer, got 2.5"),
    ({"insize": 2, "outsize": 2, "initscheme": "orthogonal"}, "'xavier' or 'he'"),
])
def test_linear_construction_errors(kwargs, message):
    with pytest.raises(ModuleError, match=message):
        Linear(**kwargs)


def test_set_var_and_get_var():
    layer = Linear(2, 2)
    replacement = Variable(toDevice(numpy.ones((2, 2), numpy.float32)), name="W")
    layer.setVar("W", replacement)
    assert layer.getVar("W") is replacement and (toHost(layer.W) == 1).all()
    with pytest.raises(ModuleError, match="no variable 'V'"):
        layer.getVar("V")


@pytest.mark.parametrize("replacement", [numpy.ones((2, 2), numpy.float32), None, "W"])
def test_set_var_refuses_what_is_not_a_variable_and_keeps_the_old_one(replacement):
    """An array given to setVar was stored as it was: ``layer.W`` then read the array's own ``.data`` (a
    memoryview) and failed far from the cause, and every table held something that is not a Variable."""
    layer = Linear(2, 2)
    old = layer.vars["W"]
    with pytest.raises(ModuleError, match="Variable"):
        layer.setVar("W", toDevice(replacement) if isinstance(replacement, numpy.ndarray) else replacement)
    assert layer.vars["W"] is old and layer.W is old.data
    with pytest.raises(ModuleError, match="Variable"):
        Sequential(layer).setVar("0.W", toDevice(numpy.ones((2, 2), numpy.float32)))
    assert layer.vars["W"] is old


def test_variable_checks_and_set():
    data = toDevice(numpy.zeros((2, 3), numpy.float32))
    var = Variable(data)
    assert var.grad.shape == (2, 3) and var.learnRate == 1.0
    var.set(numpy.ones((2, 3)))
    assert var.data is data and (toHost(data) == 1).all()
    with pytest.raises(ModuleError, match=r"shape \(2, 3\)"):
        var.set(numpy.ones((3, 2)))
    with pytest.raises(ModuleError, match="floating"):
        Variable(toDevice(numpy.zeros(2, numpy.int32)))
    with pytest.raises(ModuleError, match="grad must be a float32 array"):
        Variable(data, grad=toDevice(numpy.zeros(2, numpy.float32)))


def test_activation_construction_errors():
    with pytest.raises(ModuleError, match="activation function"):
        Activation("relu")
    with pytest.raises(ModuleError, match="takes 0 parameters"):
        Activation(relu, args=(1.0,))
    with pytest.raises(ModuleError, match=r"args must be a tuple of leakyRelu's parameters, such as \(0.2,\), got 0.2"):
        Activation(leakyRelu, args=0.2)  # TypeError: object of type 'float' has no len()
    assert Activation(leakyRelu).args == (0.01,)
    assert Activation(leakyRelu, args=[0.2]).args == (0.2,)


def test_activation_refuses_integer_input():
    with pytest.raises(ModuleError, match="floating"):
        Activation(relu)(toDevice(numpy.ones(3, numpy.int32)))


@pytest.mark.parametrize("module", [Add(), Mul(), Concat()], ids=repr)
def test_merge_modules_need_a_list_of_arrays_of_one_dtype(module):
    a = toDevice(numpy.ones((2, 3), numpy.float32))
    with pytest.raises(ModuleError, match="list of at least 2 arrays"):
        module(a)
    with pytest.raises(ModuleError, match="list of at least 2 arrays"):
        module([a])
    with pytest.raises(ModuleError, match=r"input\[1\] must have dtype float32"):
        module([a, toDevice(numpy.ones((2, 3)))])
    for first in (1.0, None, [a, a]):  # [a, a]: a Split node's list of outputs given as one parent
        with pytest.raises(ModuleError, match=r"input\[0\] must be a .* array"):
            module([first, a])


@pytest.mark.parametrize("module", [Add(), Mul()], ids=repr)
def test_add_and_mul_need_one_shape(module):
    with pytest.raises(ModuleError, match=r"inputs must have one shape, got \[\(2, 3\), \(2, 4\)\]"):
        module([toDevice(numpy.ones((2, 3))), toDevice(numpy.ones((2, 4)))])


def test_concat_needs_matching_shapes_off_its_axis():
    with pytest.raises(ModuleError, match="match except along axis 1"):
        Concat()([toDevice(numpy.ones((2, 3))), toDevice(numpy.ones((3, 3)))])
    with pytest.raises(ModuleError, match="axis 2 is out of range"):
        Concat(axis=2)([toDevice(numpy.ones((2, 3))), toDevice(numpy.ones((2, 3)))])


def test_elu_refuses_a_negative_alpha():
    """elu's derivative is read from y (f' = 1 where y > 0): right for alpha >= 0 only, where y > 0 iff x > 0."""
    assert Activation(elu, args=(0.0,)).args == (0.0,)
    with pytest.raises(ModuleError, match=r"elu: alpha must lie in \[0.0, inf\], got -0.5"):
        Activation(elu, args=(-0.5,))
    with pytest.raises(ModuleError, match="a finite real number"):
        Activation(leakyRelu, args=("0.2",))
