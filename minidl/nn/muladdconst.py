"""MulAddConst: y = a·x + b with constants a and b (a fixed scale and shift); ∂e/∂x = a·grad."""


from minidl.nn.module import Module, checkArray
from minidl.validation import checkNumber


class MulAddConst(Module):
    """``MulAddConst(a=2.0, b=-1.0)``: maps [0, 1] to [-1, 1]. Computes in the input's dtype."""

    def __init__(self, a=1.0, b=0.0, name=None):
        super().__init__(name)
        self.a = float(checkNumber(a, "MulAddConst a"))
        self.b = float(checkNumber(b, "MulAddConst b"))

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", floating=True)

    def updData(self, data):
        return data * data.dtype.type(self.a) + data.dtype.type(self.b)

    def updGrad(self, grad):
        return grad * grad.dtype.type(self.a)
