"""A layer of your own: Swish with a learned β per feature, y = x · σ(β x) (Ramachandran et al., 2017).

Its two Elementwise kernels (forward, and both derivatives), the Module around them, their checks with
minidl.testing (every kernel path against a float64 oracle, the module's gradients against central
differences), and a short training run on the handwritten digits that prints the validation accuracy and the
β learned. docs/extending.md explains each piece. Needs the ``datasets`` and ``test`` extras (scikit-learn for
the digits, hypothesis for minidl.testing).
"""

import numpy
from hypothesis import strategies as st

from minidl import backend
from minidl.backend import Elementwise, toDevice, toHost, xp
from minidl.cost import CrossEntropy
from minidl.datasets import loadDigits
from minidl.errors import ModuleError
from minidl.nn import Linear, Sequential
from minidl.nn.module import Module, checkArray
from minidl.optim import Adam
from minidl.testing import arrays, checkGradients, checkKernel, floatDtypes, kernelPaths
from minidl.train import Trainer, Validator
from minidl.variable import Variable

# The kernels: the CUDA text, and a NumPy reference taking the same arguments.


def swishNumpy(x, beta, features, y):
    b = numpy.broadcast_to(beta, (x.size // features, features)).reshape(x.shape)  # beta[i % features]
    with numpy.errstate(over="ignore"):  # exp(-b·x) = inf gives s = 0, as in C
        numpy.multiply(x, 1 / (1 + numpy.exp(-b * x)), out=y)


def swishGradNumpy(grad, x, beta, features, ingrad, betaGrad):
    b = numpy.broadcast_to(beta, (x.size // features, features)).reshape(x.shape)
    with numpy.errstate(over="ignore"):
        s = 1 / (1 + numpy.exp(-b * x))
        slope = s / (1 + numpy.exp(b * x))  # σ'(z) = σ(z) σ(-z); 1 - s would lose σ(-z)'s digits where s ≈ 1
    numpy.multiply(grad, s + b * x * slope, out=ingrad)
    numpy.multiply(grad * x * x, slope, out=betaGrad)  # the CUDA text's order: (grad·x·x)·slope


swishKer = Elementwise(
    "my_swish", "T x, raw T beta, int32 features", "T y",
    "T s = (T)1 / ((T)1 + exp(-beta[i % features] * x)); y = x * s", swishNumpy,
)
swishGradKer = Elementwise(
    "my_swish_grad", "T grad, T x, raw T beta, int32 features", "T ingrad, T betaGrad",
    """T b = beta[i % features]; T s = (T)1 / ((T)1 + exp(-b * x)); T slope = s / ((T)1 + exp(b * x));
    ingrad = grad * (s + b * x * slope); betaGrad = grad * x * x * slope""",
    swishGradNumpy,
)

# The module: parameters, forward, backward.


class Swish(Module):
    """y = x · σ(β x) on (batch, features), β of shape (features,), starting at 1 (SiLU).
    ∂y/∂x = s + β x s (1 - s) and ∂y/∂β = x² s (1 - s), with s = σ(β x)."""

    def __init__(self, features, dtype=numpy.float32, name=None):
        super().__init__(name)
        self.features = features
        self.setVar("beta", Variable(xp.ones((features,), dtype=dtype), name="beta"))

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", ndim=2, dtype=self.beta.dtype)
        if data.shape[1] != self.features:
            raise ModuleError(f"{self!r}: input must have shape (batch, {self.features}), got {data.shape}")

    def updData(self, data):
        data = xp.ascontiguousarray(data)  # kernels take C-contiguous arrays
        return swishKer(data, self.beta, self.features, xp.empty_like(data))

    def derivatives(self, grad):
        grad, x = xp.ascontiguousarray(grad), xp.ascontiguousarray(self.inData)
        return swishGradKer(grad, x, self.beta, self.features, xp.empty_like(grad), xp.empty_like(grad))

    def updGrad(self, grad):
        ingrad, self.betaGrad = self.derivatives(grad)
        return ingrad

    def accGradParams(self, grad):
        if self.grad is None:  # backward(grad, updGrad=False) skipped updGrad
            self.betaGrad = self.derivatives(grad)[1]
        self.vars["beta"].grad += self.betaGrad.sum(axis=0)


# Checks: every path of both kernels against float64 oracles, then the module's gradients in float64.


@st.composite
def swishCases(draw, outputs):
    """(dtype, args): x of a drawn (batch, features) shape, β of (features,), then ``outputs`` empty outputs."""
    dtype = draw(floatDtypes())
    batch, features = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    x, beta = draw(arrays(dtype, (batch, features))), draw(arrays(dtype, (features,), 0.5, 2.0))
    return dtype, [x, beta, features] + [numpy.zeros_like(x) for _ in range(outputs)]


@st.composite
def swishGradCases(draw):
    dtype, (x, beta, features, ingrad, betaGrad) = draw(swishCases(2))
    return dtype, [draw(arrays(dtype, x.shape)), x, beta, features, ingrad, betaGrad]


def sigmoid64(z):
    return 1 / (1 + numpy.exp(-z))


def swishOracle(x, beta, features, y):
    return [x * sigmoid64(beta * x)]


def swishGradOracle(grad, x, beta, features, ingrad, betaGrad):
    s = sigmoid64(beta * x)
    slope = s * sigmoid64(-beta * x)
    return [grad * (s + beta * x * slope), grad * x * x * slope]


checkKernel(swishKer, swishCases(1), swishOracle)
checkKernel(swishGradKer, swishGradCases(), swishGradOracle)

rng = numpy.random.default_rng(0)
layer = Swish(5, dtype=numpy.float64)
layer.vars["beta"].data[...] = toDevice(rng.uniform(0.5, 2.0, 5))
x, grad = toDevice(rng.standard_normal((4, 5))), toDevice(rng.standard_normal((4, 5)))
checkGradients(layer, x)


def betaGradient(updGrad):
    layer.vars["beta"].grad[...] = 0
    layer(x)
    layer.backward(grad, updGrad=updGrad)
    return toHost(layer.vars["beta"].grad).copy()


assert numpy.array_equal(betaGradient(True), betaGradient(False))  # a network's first module gets updGrad=False
print(f"checks passed: the NumPy reference and the {' and '.join(kernelPaths())} paths, and the gradients")


# Training: the digits through Linear → Swish → Linear, with Adam.

backend.seed(0)
digits = loadDigits()
swish = Swish(32)
net = Sequential(Linear(64, 32), swish, Linear(32, digits.classes))
trainer = Trainer(net, CrossEntropy(), Adam(alpha=0.01).setupOn(net, useGlobalState=True), batchsize=32)
validator = Validator(net, CrossEntropy(), verbose=False)
for epoch in range(1, 6):
    trainError = trainer.trainFromHost(digits.trainData, digits.trainLabels)
    validator.validateFromHost(digits.valData, digits.valLabels)
    print(f"epoch {epoch}  train error {trainError:.4f}  val accuracy {validator.accuracy:.2%}")
beta = toHost(swish.beta)
print(f"learned beta: min {beta.min():.3f}  mean {beta.mean():.3f}  max {beta.max():.3f}")
