"""Activation functions: each a forward and a gradient Elementwise kernel, declared by ``declare``.

Forward kernels (``minidl_<name>``) map x to y; gradient kernels (``minidl_<name>_grad``) map (grad, x or y) to
ingrad = grad · f'(x), reading whichever of x and y the derivative is cheapest and most accurate from. The one
extra parameter some take (alpha) is a float32 scalar. The NumPy references work in place with scratch buffers.
"""

from dataclasses import dataclass

import numpy

from minidl.backend import Elementwise, scratch

GELU_C = 0.7978845608028654  # sqrt(2 / pi)
GELU_A = 0.044715


@dataclass(frozen=True)
class ActivationFunction:
    """A named activation: ``forward(x, *args, y)`` and ``grad(grad, x or y, *args, ingrad)``."""

    name: str
    forward: Elementwise
    grad: Elementwise
    gradReads: str  # "x" or "y": which array the gradient kernel takes after grad
    defaults: tuple = ()  # the parameters' default values; argNames their names
    argNames: tuple = ()
    minimums: tuple = ()  # per parameter, the least value the kernels are right for (None: any)

    def __repr__(self):
        return self.name


def declare(name, kernel, forward, forwardNumpy, grad, gradNumpy, gradReads, alpha=None, alphaMinimum=None):
    """The activation ``name`` with kernels ``minidl_<kernel>`` (``forward``: x to y) and ``minidl_<kernel>_grad``
    (``grad``: grad and ``gradReads``, x or y, to ingrad), each with its NumPy reference; with a float32 ``alpha``
    after the arrays when its default is given, right for values >= ``alphaMinimum`` (None: any)."""
    scalars, args = ("", ()) if alpha is None else (", float32 alpha", ((alpha,), ("alpha",), (alphaMinimum,)))
    return ActivationFunction(
        name,
        Elementwise(f"minidl_{kernel}", f"T x{scalars}", "T y", forward, forwardNumpy),
        Elementwise(f"minidl_{kernel}_grad", f"T grad, T {gradReads}{scalars}", "T ingrad", grad, gradNumpy),
        gradReads,
        *args,
    )


def _mask(array, threshold=0):
    mask = scratch(array.shape, numpy.bool_, "mask")
    return numpy.greater(array, threshold, out=mask)


# relu: y = max(x, 0), NaN at NaN and +0 at -0.0; f' = [y > 0] (NaN at NaN: ingrad = grad · f', as IEEE multiplies)

def _reluNumpy(x, y):
    numpy.maximum(x, 0, out=y)
    y += 0  # -0.0 + 0 is +0: NumPy's maximum returns either zero, depending on the dtype and the array's size


def _reluGradNumpy(grad, y, ingrad):
    numpy.sign(y, out=ingrad)  # -1, 0, 1 or NaN (numpy.heaviside says the same, 10x slower: it branches)
    numpy.maximum(ingrad, 0, out=ingrad)
    ingrad *= grad


relu = declare("relu", "relu", "y = x > (T)0 || isnan(x) ? x : (T)0", _reluNumpy,
               "ingrad = grad * (y > (T)0 ? (T)1 : (isnan(y) ? y : (T)0))", _reluGradNumpy, "y")


# leakyRelu: y = x if x > 0 else alpha x; f' = 1 if x > 0 else alpha (NaN at NaN)

def _leakyReluNumpy(x, alpha, y):
    numpy.multiply(x, alpha, out=y)
    numpy.copyto(y, x, where=_mask(x))


def _leakyReluGradNumpy(grad, x, alpha, ingrad):
    numpy.multiply(grad, alpha, out=ingrad)
    numpy.copyto(ingrad, grad, where=_mask(x))
    numpy.copyto(ingrad, x, where=numpy.isnan(x, out=_mask(x)))


leakyRelu = declare("leakyRelu", "leaky_relu", "y = x > (T)0 ? x : (T)(alpha * x)", _leakyReluNumpy,
                    "ingrad = x > (T)0 ? grad : (T)((isnan(x) ? x : (T)alpha) * grad)", _leakyReluGradNumpy, "x",
                    alpha=0.01)


# sigmoid: y = 1 / (1 + exp(-x)); f' = y (1 - y)

def _sigmoidNumpy(x, y):
    with numpy.errstate(over="ignore"):
        numpy.negative(x, out=y)
        numpy.exp(y, out=y)
    y += 1
    numpy.reciprocal(y, out=y)


def _sigmoidGradNumpy(grad, y, ingrad):
    numpy.subtract(1, y, out=ingrad)
    ingrad *= y
    ingrad *= grad


sigmoid = declare("sigmoid", "sigmoid", "y = (T)1 / ((T)1 + exp(-x))", _sigmoidNumpy,
                  "ingrad = grad * y * ((T)1 - y)", _sigmoidGradNumpy, "y")


# tanh: y = tanh(x); f' = 1 - y²

def _tanhNumpy(x, y):
    numpy.tanh(x, out=y)


def _tanhGradNumpy(grad, y, ingrad):
    numpy.multiply(y, y, out=ingrad)
    numpy.subtract(1, ingrad, out=ingrad)
    ingrad *= grad


tanh = declare("tanh", "tanh", "y = tanh(x)", _tanhNumpy, "ingrad = grad * ((T)1 - y * y)", _tanhGradNumpy, "y")


# elu: y = x if x > 0 else alpha (exp(x) - 1); f' = 1 if y > 0 else y + alpha  (alpha >= 0, so that y > 0
# exactly where x > 0)

def _eluNumpy(x, alpha, y):
    with numpy.errstate(over="ignore"):
        numpy.expm1(x, out=y)
    y *= alpha
    numpy.copyto(y, x, where=_mask(x))


def _eluGradNumpy(grad, y, alpha, ingrad):
    numpy.add(y, alpha, out=ingrad)
    ingrad *= grad
    numpy.copyto(ingrad, grad, where=_mask(y))


elu = declare("elu", "elu", "y = x > (T)0 ? x : (T)(alpha * expm1(x))", _eluNumpy,
              "ingrad = y > (T)0 ? grad : (T)(grad * (y + alpha))", _eluGradNumpy, "y", alpha=1.0, alphaMinimum=0.0)


# softPlus: y = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)); f' = 1 / (1 + exp(-x))

def _softPlusNumpy(x, y):
    numpy.abs(x, out=y)
    numpy.negative(y, out=y)
    numpy.exp(y, out=y)
    numpy.log1p(y, out=y)
    positive = scratch(x.shape, x.dtype, "positive")
    numpy.maximum(x, 0, out=positive)
    y += positive


def _softPlusGradNumpy(grad, x, ingrad):
    with numpy.errstate(over="ignore"):
        numpy.negative(x, out=ingrad)
        numpy.exp(ingrad, out=ingrad)
    ingrad += 1
    numpy.divide(grad, ingrad, out=ingrad)


softPlus = declare("softPlus", "softplus", "y = (x > (T)0 ? x : (T)0) + log1p(exp(-fabs(x)))", _softPlusNumpy,
                   "ingrad = grad / ((T)1 + exp(-x))", _softPlusGradNumpy, "x")


# gelu, in the tanh form of Hendrycks & Gimpel (2016) used by BERT and GPT-2:
#   y = x/2 (1 + tanh(u)),  u = c (x + a x³),  c = sqrt(2/pi), a = 0.044715
#   f' = (1 + t)/2 + x/2 (1 - t²) c (1 + 3 a x²),  t = tanh(u)
# computed through the logistic function: s = (1 + t)/2 = 1 / (1 + e), e = exp(-2u), and 1 - s = (1 - t)/2, so
#   y = x s,  f' = s + 2 x s (1 - s) c (1 + 3 a x²).
# 1 + t cancels where t is near -1 (x below about -3): there a tanh off by a few ulps became a relative error of 1e-3
# in f' (the compiled path's vector tanh, x = -3.94 in float32), while 1 / (1 + e) keeps its relative precision.
# 1 - s is taken as e s where s >= 1/2 (e <= 1) and as 1 - s below, so no e = inf meets an s = 0.

def _geluLogistic(x):
    """(e, s) in scratch buffers: e = exp(-2u), computed as exp(-2c · x (1 + a x²)), and s = 1 / (1 + e)."""
    e = scratch(x.shape, x.dtype, "e")
    numpy.multiply(x, x, out=e)
    e *= GELU_A
    e += 1
    e *= x
    e *= -2 * GELU_C
    with numpy.errstate(over="ignore"):  # e = inf for x far below 0: s = 0 there, as it should be
        numpy.exp(e, out=e)
    s = scratch(x.shape, x.dtype, "s")
    numpy.add(e, 1, out=s)
    return e, numpy.reciprocal(s, out=s)


def _geluNumpy(x, y):
    _, s = _geluLogistic(x)
    numpy.multiply(x, s, out=y)


def _geluGradNumpy(grad, x, ingrad):
    e, s = _geluLogistic(x)
    with numpy.errstate(invalid="ignore"):  # inf · 0 where e = inf: replaced below
        numpy.multiply(e, s, out=e)  # 1 - s where s >= 1/2
    numpy.subtract(1, s, out=ingrad)
    numpy.copyto(e, ingrad, where=numpy.less(s, 0.5, out=scratch(x.shape, numpy.bool_, "mask")))
    slope = scratch(x.shape, x.dtype, "slope")
    numpy.multiply(x, x, out=slope)
    slope *= 3 * GELU_A
    slope += 1
    slope *= 2 * GELU_C
    slope *= x
    numpy.multiply(slope, s, out=ingrad)
    ingrad *= e
    ingrad += s
    ingrad *= grad


GELU_E = f"exp((T){-2 * GELU_C!r} * (x + (T){GELU_A!r} * x * x * x))"  # e = exp(-2u)
gelu = declare(
    "gelu", "gelu", f"y = x * ((T)1 / ((T)1 + {GELU_E}))", _geluNumpy,
    f"const T e = {GELU_E}; const T s = (T)1 / ((T)1 + e); const T r = s < (T)0.5 ? (T)((T)1 - s) : (T)(e * s); "
    f"ingrad = grad * (s + (T)2 * x * s * r * (T){GELU_C!r} * ((T)1 + (T){3 * GELU_A!r} * x * x))",
    _geluGradNumpy, "x",
)


ALL = (relu, leakyRelu, sigmoid, tanh, elu, softPlus, gelu)
