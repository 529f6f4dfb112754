"""Every activation's forward and derivative kernel through ``checkKernel``: the NumPy reference against a float64
oracle, the other paths against the reference, NaN, infinities, -0.0 and subnormals among the values."""

import math

import numpy
import pytest
from hypothesis import strategies as st

from minidl.nn import activationfunctions
from minidl.testing import arrays, checkKernel, floatDtypes, shapes, withSpecials

C, A = math.sqrt(2 / math.pi), 0.044715


def _sigmoid(x):
    return 1 / (1 + numpy.exp(-x))


def _step(v, below):
    """1 where v > 0, ``below`` elsewhere, NaN where v is NaN: the slope of a kinked function at v."""
    return numpy.where(numpy.isnan(v), numpy.nan, numpy.where(v > 0, 1.0, below))


# name -> (forward oracle f(x, *params), derivative oracle f' of what the derivative kernel reads (x or y)),
# written independently of minidl, NaN-aware where a comparison would drop a NaN
ORACLES = {
    "relu": (lambda x: numpy.where(numpy.isnan(x), x, numpy.where(x > 0, x, 0.0)), lambda y: _step(y, 0.0)),
    "leakyRelu": (lambda x, a: numpy.where(x > 0, x, a * x), lambda x, a: _step(x, a)),
    "sigmoid": (_sigmoid, lambda y: y * (1 - y)),
    "tanh": (numpy.tanh, lambda y: 1 - y**2),
    "elu": (lambda x, a: numpy.where(x > 0, x, a * numpy.expm1(x)), lambda y, a: numpy.where(y > 0, 1.0, y + a)),
    "softPlus": (lambda x: numpy.logaddexp(0, x), _sigmoid),
    "gelu": (
        lambda x: 0.5 * x * (1 + numpy.tanh(C * (x + A * x**3))),
        lambda x: 0.5 * (1 + numpy.tanh(C * (x + A * x**3)))
        + 0.5 * x * (1 - numpy.tanh(C * (x + A * x**3)) ** 2) * C * (1 + 3 * A * x**2),
    ),
}
FUNCTIONS = {fn.name: fn for fn in activationfunctions.ALL}


def test_every_activation_has_an_oracle():
    assert set(ORACLES) == set(FUNCTIONS)


@st.composite
def forwardCases(draw, name):
    """(dtype, [x, *params, y]); x kept away from the kink at 0 (but for -0.0 and subnormals drawn as specials)."""
    dtype = draw(floatDtypes())
    x = draw(arrays(dtype, draw(shapes()), specials=False))
    x[numpy.abs(x) < 1e-3] = 0.5
    x = draw(withSpecials(x))
    params = [float(numpy.float32(draw(st.floats(0.01, 2.0)))) for _ in FUNCTIONS[name].defaults]
    return dtype, [x, *params, draw(arrays(dtype, x.shape))]


@st.composite
def derivativeCases(draw, name):
    """(dtype, [grad, x or y, *params, ingrad]), y computed from x by the forward NumPy reference."""
    dtype, [x, *params, y] = draw(forwardCases(name))
    fn = FUNCTIONS[name]
    if fn.gradReads == "y":
        fn.forward.callNumpy(x, *params, y)
        x = y
    return dtype, [draw(arrays(dtype, x.shape)), x, *params, draw(arrays(dtype, x.shape))]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_forward_kernel(name):
    oracle = ORACLES[name][0]
    checkKernel(FUNCTIONS[name].forward, forwardCases(name), lambda x, *rest: [oracle(x, *rest[:-1])])


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_derivative_kernel(name):
    oracle = ORACLES[name][1]
    checkKernel(FUNCTIONS[name].grad, derivativeCases(name),
                lambda grad, source, *rest: [grad * oracle(source, *rest[:-1])])


@pytest.mark.parametrize("path", ["callNumpy", "callCompiled"])
def test_gelu_keeps_its_relative_precision_where_one_plus_tanh_cancels(path):
    """Below x = -3, 1 + tanh(u) cancels: computed so, a vector tanh's few ulps put the compiled f' 1e-3 off at
    x = -3.9375 in float32 (a draw of the dev profile). Down to -5 the float64 oracle's own 1 + tanh keeps 1e-9."""
    x = numpy.linspace(-5, -3, 257).astype(numpy.float32)
    forward, derivative = ORACLES["gelu"]
    y = getattr(FUNCTIONS["gelu"].forward, path)(x, numpy.empty_like(x))
    slope = getattr(FUNCTIONS["gelu"].grad, path)(numpy.ones_like(x), x, numpy.empty_like(x))
    numpy.testing.assert_allclose(y, forward(x.astype(numpy.float64)), rtol=4e-6)
    numpy.testing.assert_allclose(slope, derivative(x.astype(numpy.float64)), rtol=4e-6)
