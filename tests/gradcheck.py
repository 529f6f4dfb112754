"""Numerical gradient checks in float64 by central differences.

The error is e = Σ output ⊙ R for a fixed random R, so ∂e/∂output = R; backward(R) must then give the
input gradient and ADD each parameter's gradient to what its ``var.grad`` held (random values, so a backward
that overwrites fails), and both are compared with (e(x + h) - e(x - h)) / 2h elementwise.
"""

import numpy

from minidl.backend import toDevice, toHost

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


def checkModuleGradients(module, inputs, rtol=1e-5, atol=1e-7, seed=0):
    """Check ∂e/∂inputs and ∂e/∂parameters of ``module`` at ``inputs`` (an array or list of float64 arrays)."""
    rng = numpy.random.default_rng(seed)
    projection = _projection(module(inputs), rng)

    def error():
        return _dot(module(inputs), projection)

    variables = module.getVarTable()
    offsets = {name: rng.standard_normal(var.grad.shape) for name, var in variables.items()}
    for name, var in variables.items():
        var.grad[...] = toDevice(offsets[name])  # backward must add to it, not overwrite it
    module(inputs)
    analytic = module.backward(projection)
    paramGrads = {name: toHost(var.grad) - offsets[name] for name, var in variables.items()}

    inputList = inputs if isinstance(inputs, list) else [inputs]
    analyticList = analytic if isinstance(analytic, list) else [analytic]
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
    """Check a cost's grad against central differences of its error."""
    _, grad = cost(pred, target)
    numerical = _numerical(pred, lambda: cost.validate(pred, target))
    numpy.testing.assert_allclose(toHost(grad), numerical, rtol=rtol, atol=atol)
