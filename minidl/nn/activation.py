"""Activation: applies an activation function elementwise, y = f(x); backward gives grad · f'(x)."""


from minidl.backend import xp
from minidl.errors import ModuleError
from minidl.nn.activationfunctions import ActivationFunction
from minidl.nn.module import Module, checkArray
from minidl.validation import checkNumber


class Activation(Module):
    """``Activation(relu)``, ``Activation(leakyRelu, args=(0.2,))``: f is one of minidl.nn's activation
    functions; ``args`` overrides its parameters (leakyRelu's and elu's alpha)."""

    def __init__(self, activation, args=(), name=None):
        super().__init__(name)
        if not isinstance(activation, ActivationFunction):
            raise ModuleError(f"Activation expects an activation function such as relu, got {activation!r}")
        if not isinstance(args, (tuple, list)):
            raise ModuleError(f"Activation args must be a tuple of {activation.name}'s parameters, such as (0.2,), "
                              f"got {args!r}")
        if len(args) > len(activation.defaults):
            raise ModuleError(f"{activation.name} takes {len(activation.defaults)} parameters, got {len(args)}")
        self.activation = activation
        self.args = tuple(args) + activation.defaults[len(args):]
        for name, value, least in zip(activation.argNames, self.args, activation.minimums):
            checkNumber(value, f"{activation.name}: {name}", low=least)

    def __repr__(self):
        label = f" {self.name!r}" if self.name else ""
        return f"Activation({self.activation.name}){label}"

    def checkData(self, data):
        checkArray(data, f"{self!r}: input", floating=True)

    def updData(self, data):
        data = xp.ascontiguousarray(data)  # the kernels take C-contiguous arrays; views are copied
        return self.activation.forward(data, *self.args, xp.empty_like(data))

    def updGrad(self, grad):
        source = self.inData if self.activation.gradReads == "x" else self.data
        grad = xp.ascontiguousarray(grad)
        return self.activation.grad(grad, xp.ascontiguousarray(source), *self.args, xp.empty_like(grad))
