"""Linear: y = x W + b over the last axis: x of shape (..., insize), W of shape (insize, outsize), b of shape
(outsize,), y of shape (..., outsize); any leading axes (batch, or time and batch) are kept."""

import math

import numpy

from minidl.backend import Elementwise, generator, isGpu, toDevice, xp
from minidl.backend.products import columnSums, matmul
from minidl.errors import ModuleError
from minidl.nn.gradsum import sumInto
from minidl.nn.module import Module, checkArray
from minidl.validation import checkSize
from minidl.variable import Variable


def _addBiasNumpy(bias, width, rows):
    rows.reshape(-1, width)[...] += bias


# rows[r, k] += bias[k] for the rows of a C-contiguous (..., width) array, a row per element
addBiasKer = Elementwise(
    "minidl_add_bias",
    "raw T bias, int64 width",
    "raw T rows",
    "T* __restrict__ row = &rows[i * width]; const T* __restrict__ b = &bias[0];\n"
    "#pragma omp simd\nfor (ptrdiff_t k = 0; k < width; ++k) row[k] += b[k];",
    _addBiasNumpy,
    grain="2 * width",
)


def addBias(rows, bias):
    """rows += bias, ``bias`` (one value per column of the last axis) added to every row in place. On the CPU
    ``addBiasKer``, shared among minidl's threads from 2^14 values, where NumPy's broadcast add walks one thread (a
    (2048, 512) sum took 0.31 ms in a transformer block's step); on a GPU xp's add (one launch either way)."""
    if (isGpu or rows.dtype != bias.dtype or bias.shape != rows.shape[-1:] or not rows.flags.c_contiguous
            or not bias.flags.c_contiguous):
        rows += bias
    elif rows.size:
        addBiasKer(bias, rows.shape[-1], rows, size=rows.size // rows.shape[-1])


def initWeights(scheme, insize, outsize, shape=None):
    """Draw W on the host (the same seed gives the same network on every device), of ``shape`` (default
    (insize, outsize)); insize and outsize are the fan-in and fan-out.

    "xavier" (default): Glorot uniform on ±sqrt(6 / (insize + outsize)), as the reference framework does;
    "he": normal with std sqrt(2 / insize), suited to relu networks.
    """
    shape = (insize, outsize) if shape is None else shape
    if scheme == "xavier":
        bound = math.sqrt(6.0 / (insize + outsize))
        return generator().uniform(-bound, bound, size=shape)
    if scheme == "he":
        return generator().normal(0.0, math.sqrt(2.0 / insize), size=shape)
    raise ModuleError(f"initscheme must be 'xavier' or 'he', got {scheme!r}")


class Linear(Module):
    """Fully connected layer: data = inData @ W + b.

    Backward: grad_in = grad @ Wᵀ, ∂W += inDataᵀ @ grad, ∂b += Σ grad, the sums over every leading axis
    (the data seen as a matrix of rows of insize); on a GPU ∂b in one launch, summed in double straight into b.grad
    (``gradsum.sumInto``); on the CPU as a row of ones times grad (``products.columnSums``), 1.3-3.5x faster than
    NumPy's column sums, themselves 4x to 40x faster than the host Reduction's walk down each column (1120x10000
    rows: 2.8 ms against 11 ms).
    """

    def __init__(self, insize, outsize, useBias=True, initscheme="xavier", dtype=numpy.float32, name=None):
        super().__init__(name)
        self.insize, self.outsize = checkSize(insize, "Linear insize"), checkSize(outsize, "Linear outsize")
        self.useBias = useBias
        weights = initWeights(initscheme, self.insize, self.outsize)
        self.setVar("W", Variable(toDevice(weights, dtype=dtype), name="W"))
        if useBias:
            self.setVar("b", Variable(xp.zeros((self.outsize,), dtype=dtype), name="b"))

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", dtype=self.W.dtype)
        if data.ndim < 2:
            raise ModuleError(f"{self!r}: input must have at least 2 dimensions (batch, ..., {self.insize}), "
                              f"got shape {data.shape}")
        if data.shape[-1] != self.insize:
            raise ModuleError(f"{self!r}: input must have shape (batch, {self.insize}), or more leading axes "
                              f"(..., {self.insize}), got {data.shape}")

    def updData(self, data):
        out = matmul(data.reshape(-1, self.insize), self.W)
        if self.useBias:
            addBias(out, self.b)
        return out.reshape(data.shape[:-1] + (self.outsize,))

    def updGrad(self, grad):
        return matmul(grad.reshape(-1, self.outsize), self.W.T).reshape(self.inData.shape)

    def accGradParams(self, grad):
        rows = xp.ascontiguousarray(grad).reshape(-1, self.outsize)
        matmul(self.inData.reshape(-1, self.insize).T, rows, out=self.vars["W"].grad, accumulate=True)
        if self.useBias and isGpu:
            sumInto(rows, self.vars["b"].grad, axis=0)
        elif self.useBias:
            self.vars["b"].grad += columnSums(rows)
