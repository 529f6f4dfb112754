"""The SGD and AdaGrad update kernels: CPU path against the formula in float64 over several steps, other paths
against the CPU path. float16 runs too, at its own tolerance; hyperparameters are in the compute type."""

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl.optim.adagrad import adagradRule
from minidl.optim.sgd import sgdRule
from minidl.optim.state import computeType
from minidl.testing import arrays, assertMatches, floatDtypes, runPath, shapes
from tests.kernellegs import devicePath

STEPS = 3


def runNumpy(kernel, args):
    """The NumPy reference's outputs on copies of args."""
    return runPath("numpy", kernel, args)


def sgdOracle(param, grads, learnRate):
    for grad in grads:
        param = param - learnRate * grad
    return [param]


def adagradOracle(param, grads, learnRate, epsilon):
    h = numpy.zeros_like(param)
    for grad in grads:
        h = h + grad**2
        param = param - learnRate * grad / (numpy.sqrt(h) + epsilon)
    return [param, h]


@st.composite
def cases(draw):
    dtype = draw(floatDtypes(half=True))
    shape = draw(shapes())
    param = draw(arrays(dtype, shape))
    grads = [draw(arrays(dtype, shape, -2, 2)) for _ in range(STEPS)]
    ct = computeType(dtype).type
    return dtype, param, grads, float(ct(draw(st.floats(1e-4, 0.1)))), float(ct(draw(st.floats(1e-8, 1e-2))))


def _one(param):
    """The gradient scale 1, of the compute type, and the guard's flag: take the step."""
    return numpy.ones(1, computeType(param.dtype)), numpy.zeros(1, numpy.int32)


KERNELS = {
    # name -> (kernel, kernel args for one step given (param, state, grad, lr, eps), oracle)
    "sgd": (sgdRule.direct, lambda p, s, g, lr, eps: [g, *_one(p), lr, p],
            lambda p, gs, lr, eps: sgdOracle(p, gs, lr)),
    "adagrad": (adagradRule.direct, lambda p, s, g, lr, eps: [g, *_one(p), lr, eps, p, s], adagradOracle),
}


def _steps(run, name, param, grads, learnRate, epsilon):
    kernel, argsOf, _ = KERNELS[name]
    state = numpy.zeros(param.shape, numpy.promote_types(param.dtype, numpy.float32))  # as optim.stateArray
    for grad in grads:
        outputs = run(kernel, argsOf(param, state, grad, learnRate, epsilon))
        param, state = outputs[0], outputs[-1]
    return outputs


@pytest.mark.parametrize("name", sorted(KERNELS))
@given(case=cases())
def test_cpu_matches_formula_in_float64(name, case):
    dtype, param, grads, learnRate, epsilon = case
    expected = KERNELS[name][2](param.astype(numpy.float64), [g.astype(numpy.float64) for g in grads],
                                learnRate, epsilon)
    assertMatches(_steps(runNumpy, name, param, grads, learnRate, epsilon), expected, dtype, name)


@pytest.mark.parametrize("path", ["host", devicePath()])
@pytest.mark.parametrize("name", sorted(KERNELS))
@given(case=cases())
def test_other_paths_match_cpu(path, name, case):
    dtype, param, grads, learnRate, epsilon = case
    onPath = _steps(lambda kernel, args: runPath(path, kernel, args), name, param, grads, learnRate, epsilon)
    assertMatches(onPath, _steps(runNumpy, name, param, grads, learnRate, epsilon), dtype, f"{name} on {path}")


@pytest.mark.parametrize("path", ["numpy", "host", devicePath()])
@given(case=cases())
def test_adagrad_master_kernel_follows_the_formula_in_float32_and_writes_the_half_copy(path, case):
    """float16 parameters with float32 masters: one launch reads the half gradient, steps the float32 master and
    accumulator as float32 parameters would, and writes the master rounded to float16 into the parameter."""
    _, param, grads, learnRate, epsilon = case
    param, grads = param.astype(numpy.float16), [grad.astype(numpy.float16) for grad in grads]
    master, h = param.astype(numpy.float32), numpy.zeros(param.shape, numpy.float32)
    half = param.copy()
    for grad in grads:
        master, h, half = runPath(path, adagradRule.master,
                                  [grad, *_one(master), learnRate, epsilon, master, h, half])
    expected = adagradOracle(param.astype(numpy.float64), [grad.astype(numpy.float64) for grad in grads],
                             learnRate, epsilon)
    assertMatches([master, h], expected, numpy.float32, f"adagrad master on {path}")
    numpy.testing.assert_array_equal(half, master.astype(numpy.float16), err_msg="the float16 copy")


@pytest.mark.parametrize("path", ["numpy", "host", devicePath()])
@given(case=cases())
def test_the_guards_flag_makes_a_launch_change_nothing(path, case):
    """skip[0] = 1 (the non-finite guard's verdict): the direct and the master kernel leave parameters, masters,
    state and the float16 copy as they were, whatever the gradient."""
    _, param, grads, learnRate, epsilon = case
    state = numpy.full(param.shape, 0.5, numpy.promote_types(param.dtype, numpy.float32))
    skip = numpy.ones(1, numpy.int32)
    outputs = runPath(path, adagradRule.direct, [grads[0], _one(param)[0], skip, learnRate, epsilon, param, state])
    assertMatches(outputs, [param, state], param.dtype, f"a skipped direct launch on {path}", signedZeros=True,
                  tolerances=(0, 0))
    half = param.astype(numpy.float16)
    master = half.astype(numpy.float32) + 1  # a master that differs from its half copy stays as it is
    outputs = runPath(path, adagradRule.master, [half, numpy.ones(1, numpy.float32), skip, learnRate, epsilon,
                                                 master, state.astype(numpy.float32), half])
    assertMatches(outputs, [master, state.astype(numpy.float32), half], numpy.float32,
                  f"a skipped master launch on {path}", signedZeros=True, tolerances=(0, 0))
