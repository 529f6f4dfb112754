"""MatMul: the batched matrix product of two inputs, C = A @ B for A of shape (..., n, k) and B of shape
(..., k, m) with the same leading axes; backward: ∂A = ∂C Bᵀ, ∂B = Aᵀ ∂C (transposes of the last two axes).
A graph's merge module, as Add and Concat are (attention scores Q Kᵀ from ``SwapAxes(-1, -2)`` on K). One launch per
product on a GPU, transposed operands read in place (``minidl.backend.products``)."""

from minidl.backend.products import matmul
from minidl.errors import ModuleError
from minidl.nn.module import Module, checkArrayList


class MatMul(Module):
    """Multiplies two inputs [A, B] of one dtype as batched matrices (no broadcasting of the leading axes)."""

    def checkData(self, data):
        checkArrayList(data, f"{self!r}: input", sameShape=False)
        if len(data) != 2:
            raise ModuleError(f"{self!r}: takes exactly 2 inputs [A, B], got {len(data)}")
        a, b = data
        if a.ndim < 2 or a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-2]:
            raise ModuleError(f"{self!r}: inputs must be (..., n, k) and (..., k, m) with the same leading axes, "
                              f"got {a.shape} and {b.shape}")

    def updData(self, data):
        return matmul(data[0], data[1])

    def updGrad(self, grad):
        a, b = self.inData
        return [matmul(grad, b.swapaxes(-1, -2)), matmul(a.swapaxes(-1, -2), grad)]
