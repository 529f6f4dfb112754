"""Activation functions: each a forward and a derivative Elementwise kernel.

Forward kernels map x to y; derivative kernels map (grad, x or y) to ingrad = grad · f'(x), reading
whichever of x and y the derivative is cheapest and most accurate from. Extra parameters (alpha) are
float32 scalars. The NumPy references work in place with scratch buffers.
"""

from dataclasses import dataclass

import numpy

from minidl.backend import Elementwise, scratch

GELU_C = 0.7978845608028654  # sqrt(2 / pi)
GELU_A = 0.044715


@dataclass(frozen=True)
class ActivationFunction:
    """A named activation: ``forward(x, *args, y)`` and ``derivative(grad, x or y, *args, ingrad)``."""

    name: str
    forward: Elementwise
    derivative: Elementwise
    derivativeReads: str  # "x" or "y": which array the derivative kernel takes after grad
    defaults: tuple = ()  # the parameters' default values; argNames their names
    argNames: tuple = ()
    minimums: tuple = ()  # per parameter, the least value the kernels are right for (None: any)

    def __repr__(self):
        return self.name


def _mask(array, threshold=0):
    mask = scratch(array.shape, numpy.bool_, slot=1)
    return numpy.greater(array, threshold, out=mask)


# relu: y = max(x, 0), NaN at NaN and +0 at -0.0; f' = [y > 0] (NaN at NaN: ingrad = grad · f', as IEEE multiplies)

def _reluNumpy(x, y):
    numpy.maximum(x, 0, out=y)
    y += 0  # -0.0 + 0 is +0: NumPy's maximum returns either zero, depending on the dtype and the array's size


def _reluDerivNumpy(grad, y, ingrad):
    numpy.sign(y, out=ingrad)  # -1, 0, 1 or NaN (numpy.heaviside says the same, 10x slower: it branches)
    numpy.maximum(ingrad, 0, out=ingrad)
    ingrad *= grad


relu = ActivationFunction(
    "relu",
    Elementwise("minidl_relu", "T x", "T y", "y = x > (T)0 || isnan(x) ? x : (T)0", _reluNumpy),
    Elementwise(
        "minidl_relu_deriv", "T grad, T y", "T ingrad",
        "ingrad = grad * (y > (T)0 ? (T)1 : (isnan(y) ? y : (T)0))", _reluDerivNumpy,
    ),
    "y",
)


# leakyRelu: y = x if x > 0 else alpha x; f' = 1 if x > 0 else alpha (NaN at NaN)

def _leakyReluNumpy(x, alpha, y):
    numpy.multiply(x, alpha, out=y)
    numpy.copyto(y, x, where=_mask(x))


def _leakyReluDerivNumpy(grad, x, alpha, ingrad):
    numpy.multiply(grad, alpha, out=ingrad)
    numpy.copyto(ingrad, grad, where=_mask(x))
    numpy.copyto(ingrad, x, where=numpy.isnan(x, out=_mask(x)))


leakyRelu = ActivationFunction(
    "leakyRelu",
    Elementwise("minidl_leaky_relu", "T x, float32 alpha", "T y", "y = x > (T)0 ? x : (T)(alpha * x)", _leakyReluNumpy),
    Elementwise(
        "minidl_leaky_relu_deriv", "T grad, T x, float32 alpha", "T ingrad",
        "ingrad = x > (T)0 ? grad : (T)((isnan(x) ? x : (T)alpha) * grad)", _leakyReluDerivNumpy,
    ),
    "x",
    defaults=(0.01,),
    argNames=("alpha",),
    minimums=(None,),
)


# sigmoid: y = 1 / (1 + exp(-x)); f' = y (1 - y)

def _sigmoidNumpy(x, y):
    with numpy.errstate(over="ignore"):
        numpy.negative(x, out=y)
        numpy.exp(y, out=y)
    y += 1
    numpy.reciprocal(y, out=y)


def _sigmoidDerivNumpy(grad, y, ingrad):
    numpy.subtract(1, y, out=ingrad)
    ingrad *= y
    ingrad *= grad


sigmoid = ActivationFunction(
    "sigmoid",
    Elementwise("minidl_sigmoid", "T x", "T y", "y = (T)1 / ((T)1 + exp(-x))", _sigmoidNumpy),
    Elementwise(
        "minidl_sigmoid_deriv", "T grad, T y", "T ingrad", "ingrad = grad * y * ((T)1 - y)", _sigmoidDerivNumpy
    ),
    "y",
)


# tanh: y = tanh(x); f' = 1 - y²

def _tanhNumpy(x, y):
    numpy.tanh(x, out=y)


def _tanhDerivNumpy(grad, y, ingrad):
    numpy.multiply(y, y, out=ingrad)
    numpy.subtract(1, ingrad, out=ingrad)
    ingrad *= grad


tanh = ActivationFunction(
    "tanh",
    Elementwise("minidl_tanh", "T x", "T y", "y = tanh(x)", _tanhNumpy),
    Elementwise("minidl_tanh_deriv", "T grad, T y", "T ingrad", "ingrad = grad * ((T)1 - y * y)", _tanhDerivNumpy),
    "y",
)


# elu: y = x if x > 0 else alpha (exp(x) - 1); f' = 1 if y > 0 else y + alpha  (alpha >= 0, so that y > 0
# exactly where x > 0)

def _eluNumpy(x, alpha, y):
    with numpy.errstate(over="ignore"):
        numpy.expm1(x, out=y)
    y *= alpha
    numpy.copyto(y, x, where=_mask(x))


def _eluDerivNumpy(grad, y, alpha, ingrad):
    numpy.add(y, alpha, out=ingrad)
    ingrad *= grad
    numpy.copyto(ingrad, grad, where=_mask(y))


elu = ActivationFunction(
    "elu",
    Elementwise("minidl_elu", "T x, float32 alpha", "T y", "y = x > (T)0 ? x : (T)(alpha * expm1(x))", _eluNumpy),
    Elementwise(
        "minidl_elu_deriv", "T grad, T y, float32 alpha", "T ingrad",
        "ingrad = y > (T)0 ? grad : (T)(grad * (y + alpha))", _eluDerivNumpy,
    ),
    "y",
    defaults=(1.0,),
    argNames=("alpha",),
    minimums=(0.0,),
)


# softPlus: y = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)); f' = 1 / (1 + exp(-x))

def _softPlusNumpy(x, y):
    numpy.abs(x, out=y)
    numpy.negative(y, out=y)
    numpy.exp(y, out=y)
    numpy.log1p(y, out=y)
    positive = scratch(x.shape, x.dtype)
    numpy.maximum(x, 0, out=positive)
    y += positive


def _softPlusDerivNumpy(grad, x, ingrad):
    with numpy.errstate(over="ignore"):
        numpy.negative(x, out=ingrad)
        numpy.exp(ingrad, out=ingrad)
    ingrad += 1
    numpy.divide(grad, ingrad, out=ingrad)


softPlus = ActivationFunction(
    "softPlus",
    Elementwise(
        "minidl_softplus", "T x", "T y", "y = (x > (T)0 ? x : (T)0) + log1p(exp(-fabs(x)))", _softPlusNumpy
    ),
    Elementwise(
        "minidl_softplus_deriv", "T grad, T x", "T ingrad", "ingrad = grad / ((T)1 + exp(-x))", _softPlusDerivNumpy
    ),
    "x",
)


# gelu, in the tanh form of Hendrycks & Gimpel (2016) used by BERT and GPT-2:
#   y = x/2 (1 + tanh(u)),  u = c (x + a x³),  c = sqrt(2/pi), a = 0.044715
#   f' = (1 + t)/2 + x/2 (1 - t²) c (1 + 3 a x²),  t = tanh(u)

def _geluNumpy(x, y):
    inner = scratch(x.shape, x.dtype)
    numpy.multiply(x, x, out=inner)
    inner *= GELU_A
    inner += 1
    inner *= x
    inner *= GELU_C
    numpy.tanh(inner, out=inner)
    inner += 1
    numpy.multiply(x, inner, out=y)
    y *= 0.5


def _geluDerivNumpy(grad, x, ingrad):
    t = scratch(x.shape, x.dtype)
    slope = scratch(x.shape, x.dtype, slot=2)
    numpy.multiply(x, x, out=t)
    t *= GELU_A
    t += 1
    t *= x
    t *= GELU_C
    numpy.tanh(t, out=t)
    numpy.multiply(x, x, out=slope)
    slope *= 3 * GELU_A
    slope += 1
    slope *= GELU_C / 2
    slope *= x
    numpy.multiply(t, t, out=ingrad)
    numpy.subtract(1, ingrad, out=ingrad)
    ingrad *= slope
    t += 1
    t *= 0.5
    ingrad += t
    ingrad *= grad


gelu = ActivationFunction(
    "gelu",
    Elementwise(
        "minidl_gelu", "T x", "T y",
        f"y = (T)0.5 * x * ((T)1 + tanh((T){GELU_C!r} * (x + (T){GELU_A!r} * x * x * x)))",
        _geluNumpy,
    ),
    Elementwise(
        "minidl_gelu_deriv", "T grad, T x", "T ingrad",
        f"T t = tanh((T){GELU_C!r} * (x + (T){GELU_A!r} * x * x * x)); "
        f"ingrad = grad * ((T)0.5 * ((T)1 + t) "
        f"+ (T)0.5 * x * ((T)1 - t * t) * (T){GELU_C!r} * ((T)1 + (T){3 * GELU_A!r} * x * x))",
        _geluDerivNumpy,
    ),
    "x",
)

ALL = (relu, leakyRelu, sigmoid, tanh, elu, softPlus, gelu)
