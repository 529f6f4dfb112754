"""Numerical gradient checks in float64, by central differences.

For a module the error is e = Σ output ⊙ R for a fixed random R, so ∂e/∂output = R; ``backward(R)`` must then
give each input's gradient and ADD each parameter's gradient to what its ``var.grad`` held (random values, so a
backward that overwrites fails). Both are compared elementwise with (e(x + h) - e(x - h)) / 2h.
"""

import numpy

from minidl.backend import toDevice, toHost
from minidl.errors import TestingError

STEP = 1e-6


def _projection(output, rng):
    if isinstance(output, list):
        return [_projection(item, rng) for item in output]
    return toDevice(rng.standard_normal(output.shape))


def _dot(output, projection):
    if isinstance(output, list):
        return sum(_dot(o, p) for o, p in zip(output, projection))
    return float((toHost(output) * toHost(projection)).sum())


def _numerical(array, error):
    """∂error/∂array by central differences, perturbing the device array in place."""
    result = numpy.zeros(array.shape)
    for index in numpy.ndindex(array.shape):
        saved = float(array[index])
        array[index] = saved + STEP
        plus = error()
        array[index] = saved - STEP
        minus = error()
        array[index] = saved
        result[index] = (plus - minus) / (2 * STEP)
    return result


def _requireFloat64(array, what):
    if array.dtype.kind == "f" and array.dtype != numpy.float64:
        raise TestingError(f"{what} is {array.dtype}: numerical gradients need float64 (a step of {STEP} is lost "
                           f"in lower precisions); build the module and its inputs in float64")


def checkGradients(module, inputs, rtol=1e-5, atol=1e-7, seed=0):
    """Check ``module``'s gradients at ``inputs`` (one float64 device array, or a list of them for a module of
    several inputs such as a ``Graph``): ∂e/∂input for each floating input (an integer input, indices, must get
    None) and ∂e/∂parameter for every Variable in ``module.getVarTable()``, against central differences of the
    error e = Σ output ⊙ R. Raise AssertionError naming the input or parameter that differs.

    Keep ``module`` deterministic (evaluation mode for Dropout) and the inputs away from kinks (relu at 0,
    max pooling's ties), where the numerical derivative is not the derivative."""
    inputList = inputs if isinstance(inputs, list) else [inputs]
    for index, x in enumerate(inputList):
        _requireFloat64(x, f"input {index}")
    variables = module.getVarTable()
    for name, var in variables.items():
        _requireFloat64(var.data, f"parameter {name}")
    rng = numpy.random.default_rng(seed)
    projection = _projection(module(inputs), rng)

    def error():
        return _dot(module(inputs), projection)

    offsets = {name: rng.standard_normal(var.grad.shape) for name, var in variables.items()}
    for name, var in variables.items():
        var.grad[...] = toDevice(offsets[name])  # backward must add to it, not overwrite it
    module(inputs)
    analytic = module.backward(projection)
    paramGrads = {name: toHost(var.grad) - offsets[name] for name, var in variables.items()}

    analyticList = analytic if isinstance(analytic, list) else [analytic]
    assert len(analyticList) == len(inputList), f"{len(inputList)} inputs, yet {len(analyticList)} input gradients"
    for index, (x, grad) in enumerate(zip(inputList, analyticList)):
        if x.dtype.kind in "biu":  # indices (Embedder), masks (attention): not differentiable, no gradient
            assert grad is None, f"input {index} holds integers or booleans, yet got a gradient"
            continue
        numpy.testing.assert_allclose(toHost(grad), _numerical(x, error), rtol=rtol, atol=atol,
                                      err_msg=f"gradient of input {index}")
    for name, var in variables.items():
        numpy.testing.assert_allclose(paramGrads[name], _numerical(var.data, error), rtol=rtol, atol=atol,
                                      err_msg=f"gradient of parameter {name}")


def checkCostGradient(cost, pred, target, rtol=1e-5, atol=1e-8):
    """Check the gradient ``cost(pred, target)`` returns against central differences of ``cost.validate``'s
    error, perturbing each element of ``pred`` (a float64 device array)."""
    _requireFloat64(pred, "pred")
    _, grad = cost(pred, target)
    numerical = _numerical(pred, lambda: cost.validate(pred, target))
    numpy.testing.assert_allclose(toHost(grad), numerical, rtol=rtol, atol=atol, err_msg=f"gradient of {cost}")
