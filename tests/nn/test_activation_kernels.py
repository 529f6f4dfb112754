"""Every activation's forward and derivative kernel: CPU path against a float64 oracle, other paths
against the CPU path."""

import math

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.nn import activations
from tests.kernelcheck import FLOAT_DTYPES, arrays, checkAgainstCpu, checkAgainstOracle, otherPathParams, shapes

C, A = math.sqrt(2 / math.pi), 0.044715


def _sigmoid(x):
    return 1 / (1 + numpy.exp(-x))


# name -> (forward oracle f(x, *params), derivative oracle f'(x, *params)), written independently of minidl
ORACLES = {
    "relu": (lambda x: numpy.where(x > 0, x, 0.0), lambda x: (x > 0).astype(float)),
    "leakyRelu": (lambda x, a: numpy.where(x > 0, x, a * x), lambda x, a: numpy.where(x > 0, 1.0, a)),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x))),
    "tanh": (numpy.tanh, lambda x: 1 / numpy.cosh(x) ** 2),
    "elu": (
        lambda x, a: numpy.where(x > 0, x, a * numpy.expm1(x)),
        lambda x, a: numpy.where(x > 0, 1.0, a * numpy.exp(x)),
    ),
    "softPlus": (lambda x: numpy.log1p(numpy.exp(x)), lambda x: numpy.exp(x) / (1 + numpy.exp(x))),
    "gelu": (
        lambda x: 0.5 * x * (1 + numpy.tanh(C * (x + A * x**3))),
        lambda x: 0.5 * (1 + numpy.tanh(C * (x + A * x**3)))
        + 0.5 * x * (1 - numpy.tanh(C * (x + A * x**3)) ** 2) * C * (1 + 3 * A * x**2),
    ),
}
FUNCTIONS = {fn.name: fn for fn in activations.ALL}


def test_every_activation_has_an_oracle():
    assert set(ORACLES) == set(FUNCTIONS)


@st.composite
def cases(draw, name):
    """(dtype, x, grad, params) for one function; x kept away from the kinks at 0 where f' jumps."""
    dtype = draw(FLOAT_DTYPES)
    shape = draw(shapes())
    x = draw(arrays(dtype, shape))
    x[numpy.abs(x) < 1e-3] = 0.5
    grad = draw(arrays(dtype, shape))
    params = tuple(float(numpy.float32(draw(st.floats(0.01, 2.0)))) for _ in FUNCTIONS[name].defaults)
    return dtype, x, grad, params


def _derivativeArgs(name, x, grad, params):
    source = x if FUNCTIONS[name].derivativeReads == "x" else _forward(name, x, params)
    return [grad, source, *params, numpy.empty_like(x)]


def _forward(name, x, params):
    y = numpy.empty_like(x)
    FUNCTIONS[name].forward.callNumpy(x, *params, y)  # the CPU path feeds the CPU path, whatever the default
    return y


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@given(data=st.data())
def test_forward_cpu_matches_float64_oracle(name, data):
    dtype, x, _, params = data.draw(cases(name))
    oracle = ORACLES[name][0]
    checkAgainstOracle(FUNCTIONS[name].forward, [x, *params, numpy.empty_like(x)],
                       lambda x, *rest: [oracle(x, *rest[:-1])], dtype)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@given(data=st.data())
def test_derivative_cpu_matches_float64_oracle(name, data):
    dtype, x, grad, params = data.draw(cases(name))
    oracle = ORACLES[name][1]
    args = _derivativeArgs(name, x, grad, params)
    expected = grad.astype(numpy.float64) * oracle(x.astype(numpy.float64), *params)
    checkAgainstOracle(FUNCTIONS[name].derivative, args, lambda *_: [expected], dtype)


@pytest.mark.parametrize("path", otherPathParams())
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@given(data=st.data())
def test_other_paths_match_cpu(path, name, data):
    dtype, x, grad, params = data.draw(cases(name))
    fn = FUNCTIONS[name]
    checkAgainstCpu(path, fn.forward, [x, *params, numpy.empty_like(x)], dtype)
    checkAgainstCpu(path, fn.derivative, _derivativeArgs(name, x, grad, params), dtype)
